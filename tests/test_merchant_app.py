"""The merchant app's frame: /app needs a signed-in merchant or the operator, and shows one store only."""

from __future__ import annotations

from app.runtime import Runtime
from tests.conftest import add_store
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install, rt, web  # noqa: F401
from tests.support.fake_shopify import session_token

SHOP_A, SHOP_B = "amber-loom.myshopify.com", "birch-kiln.myshopify.com"


def test_the_operator_picks_a_store_and_strangers_get_nothing(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime, SHOP_A)
    add_store(runtime, SHOP_B)
    page = self_hosted_client.get(f"/app/?store={SHOP_B}")
    assert page.status_code == 200 and SHOP_B in page.get_data(as_text=True)
    assert self_hosted_client.get("/app/?store=cold-fen.myshopify.com").status_code == 404
    self_hosted_client.environ_base.pop("HTTP_AUTHORIZATION")
    stranger = self_hosted_client.get(f"/app/?store={SHOP_B}")  # no token, no account: the sign-in page
    assert stranger.status_code == 302 and "/app/sign-in" in stranger.headers["Location"]


def test_a_shopify_session_sees_its_own_shop_and_never_another(rt: Runtime, web) -> None:  # noqa: F811
    install(web, SHOP_A)
    install(web, SHOP_B)
    bearer = {"Authorization": f"Bearer {session_token(SHOP_A, API_KEY, SECRET)}"}
    page = web.get("/app/", headers=bearer)
    assert page.status_code == 200 and SHOP_A in page.get_data(as_text=True)
    assert web.get(f"/app/?store={SHOP_B}", headers=bearer).status_code == 404
