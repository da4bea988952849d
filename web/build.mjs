// Bundles mqtt.js for the browser into ../alleycat/viewer/vendor/mqtt.min.js.
//
// Reproducible: versions come from package-lock.json (`npm ci`), esbuild's output is deterministic,
// and the banner names both versions so a test can check the committed file against the lock.
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;

const banner =
  `/*! mqtt.js ${version("mqtt")} (MIT, https://github.com/mqttjs/MQTT.js) bundled with esbuild ` +
  `${version("esbuild")}; rebuild: cd web && npm ci && npm run build */`;

await build({
  entryPoints: [new URL("./entry.js", import.meta.url).pathname],
  outfile: new URL("../alleycat/viewer/vendor/mqtt.min.js", import.meta.url).pathname,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  legalComments: "eof",
  banner: { js: banner },
  logLevel: "info",
});
