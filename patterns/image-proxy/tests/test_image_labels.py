"""Label detection (DetectLabels=true) on localcloud: the labels come from moto's fixed stand-in,
and the record says so instead of presenting them as analysis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from image_samples import png_bytes

from localcloud import LocalCloud

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_local_labels_are_marked_as_stand_ins():
    with LocalCloud() as cloud:
        outputs = cloud.deploy(TEMPLATE, "image-proxy-labels", parameters={"DetectLabels": "true"}).outputs
        url = cloud.api_gateway.local_url(outputs["ApiUrl"])
        put = requests.put(
            f"{url}/images/l.png", data=png_bytes(11), headers={"Content-Type": "image/png"}, timeout=60
        )
        assert put.status_code == 202

        image: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while not (image.get("analysis") or {}).get("labels") and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = requests.get(f"{url}/images/l.png", timeout=60)
            image = answer.json() if answer.status_code == 200 else {}

        labels = image["analysis"]["labels"]
        assert labels["source"].startswith("local stand-in")
        assert "not an analysis" in labels["source"]
        assert labels["names"]  # whatever the stand-in answered, kept as it came


def test_labels_are_off_by_default():
    template = TEMPLATE.read_text()
    assert 'DetectLabels:\n    Type: String\n    Default: "false"' in template
