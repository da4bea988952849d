// The one third-party module the viewer page uses, re-exported so esbuild emits a single ES module.
import mqtt from "mqtt";

export default mqtt;
export const connect = mqtt.connect;
