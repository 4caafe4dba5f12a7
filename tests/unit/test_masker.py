"""The one masker: known secrets (raw and URL-encoded) and any Bot API token by shape."""

from __future__ import annotations

from openclaw_failover.config.secrets import Masker, shorten


def test_known_secret_raw_and_url_encoded() -> None:
    mask = Masker(["p@ss/word"])
    assert mask("dsn password=p@ss/word") == "dsn password=***"
    assert "p%40ss" not in mask("https://h/?pw=p%40ss%2Fword")


def test_a_bot_token_ocf_was_not_told_about_is_masked_by_its_shape() -> None:
    text = "POST https://api.telegram.org/bot123456789:AAHd-secret_Value42/getUpdates: 409"
    out = Masker()(text)
    assert "AAHd-secret_Value42" not in out and "123456789:" not in out
    assert out == "POST https://api.telegram.org/bot***/getUpdates: 409"


def test_mask_first_then_shorten_leaves_no_piece() -> None:
    secret = "supersecretvalue"
    line = "x" * 50 + secret
    assert secret[:6] not in shorten(Masker([secret])(line), 60)
