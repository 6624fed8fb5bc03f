"""The storefront assets: size budget, deferred loading, built from source, Shopify theme check."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "theme_extension"
NODE_TOOLS = ROOT / ".ci" / "node"
CI = os.environ.get("CI", "").lower() == "true"


def node_tools() -> str:
    node = shutil.which("node")
    if node and (NODE_TOOLS / "node_modules").is_dir():
        return node
    message = "node or .ci/node/node_modules is missing (cd .ci/node && npm ci)"
    if CI:
        pytest.fail(message + " — CI=true requires it", pytrace=False)
    pytest.skip(message)


def test_tracker_is_at_most_2_kb_gzipped() -> None:
    size = len(gzip.compress((EXT / "assets" / "cartresq-tracker.js").read_bytes(), compresslevel=9))
    assert size <= 2048, f"cartresq-tracker.js is {size} bytes gzipped"


def test_embed_block_loads_the_tracker_deferred_with_its_settings() -> None:
    block = (EXT / "blocks" / "cartresq-embed.liquid").read_text()
    tags = re.findall(r"<script\b[^>]*>", block, re.S)
    assert len(tags) == 1
    tag = tags[0]
    assert "{{ 'cartresq-tracker.js' | asset_url }}" in tag
    assert re.search(r"\sdefer\s", tag) and "async" not in tag
    for attr in ("data-endpoint", "data-shop", "data-exit-popup", "data-capture", "data-honor-dnt", "data-popup-src",
                 "data-push-base"):
        assert attr + "=" in tag
    assert '"target": "body"' in block
    # The popup is never loaded by the page itself: only the tracker pulls it in when it shows.
    assert "<script" not in block.replace(tag, "")


def test_assets_are_built_from_storefront_sources() -> None:
    node = node_tools()
    result = subprocess.run([node, str(NODE_TOOLS / "build-storefront.mjs"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_theme_check_has_zero_offenses() -> None:
    node = node_tools()
    result = subprocess.run([node, str(NODE_TOOLS / "theme-check.mjs"), str(EXT)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("0 offenses")


def test_theme_check_does_see_offenses(tmp_path: Path) -> None:
    """The check above is not vacuous: a parser-blocking script in the block is reported."""
    node = node_tools()
    copy = tmp_path / "ext"
    shutil.copytree(EXT, copy)
    block = copy / "blocks" / "cartresq-embed.liquid"
    block.write_text(re.sub(r"\n\s*defer\n", "\n", block.read_text()))
    result = subprocess.run([node, str(NODE_TOOLS / "theme-check.mjs"), str(copy)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "ParserBlockingScript" in result.stdout
