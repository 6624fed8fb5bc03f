"""Values a forged link or a typo can carry answer 4xx with a reason, never a 500: row ids beyond any stored id
(SQLite's driver raises OverflowError above 2**63 - 1), dates at the ends of the calendar."""

from __future__ import annotations

import pytest

from app.runtime import Runtime
from tests.conftest import SHOP, add_store

HUGE = 2**63  # one past the largest BIGINT: SQLite's driver cannot bind it


@pytest.mark.parametrize("method, path", [
    ("get", f"/app/carts/{HUGE}?store={SHOP}"),
    ("get", f"/app/carts/{10**30}?store={SHOP}"),
    ("post", f"/app/status/deliveries/{HUGE}/retry?store={SHOP}"),
    ("post", f"/ops/stores/{SHOP}/deliveries/{HUGE}/retry"),
])  # fmt: skip
def test_an_id_beyond_any_stored_row_is_404_not_a_500(runtime: Runtime, self_hosted_client, method: str, path: str) -> None:
    add_store(runtime)
    response = getattr(self_hosted_client, method)(path)
    assert response.status_code == 404, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("digits", ["\u0661", "\uff11", "01"])  # Arabic-Indic one, fullwidth one, a leading zero
def test_an_id_is_written_in_ascii_digits_only(runtime: Runtime, self_hosted_client, digits: str) -> None:
    add_store(runtime)
    assert self_hosted_client.get(f"/app/carts/{digits}?store={SHOP}").status_code == 404


def test_the_largest_stored_id_still_reaches_the_page(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime)  # the route matches (the store has no such cart): the page's own 404, with its reason
    response = self_hosted_client.get(f"/app/carts/{HUGE - 1}?store={SHOP}")
    assert response.status_code == 404 and b"no such cart in this store" in response.data


@pytest.mark.parametrize("path", [
    "/app/performance?from=9999-12-31&to=9999-12-31",
    "/app/performance?to=0001-01-01",
    "/app/performance?from=0001-01-01&to=0001-01-02",
    "/app/carts?to=9999-12-31",
    "/app/carts?from=0001-01-01",
])  # fmt: skip
def test_a_date_at_the_end_of_the_calendar_is_refused_with_the_range_allowed(runtime: Runtime, self_hosted_client, path: str) -> None:
    add_store(runtime)
    response = self_hosted_client.get(f"{path}&store={SHOP}")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "must be a date from 1970-01-01 to 9998-12-31" in response.get_json()["detail"]


def test_the_last_allowed_days_still_answer(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime)
    for path in ("/app/performance?from=9998-12-31&to=9998-12-31", "/app/performance?from=1970-01-01&to=1970-01-01",
                 "/app/carts?from=9998-12-01&to=9998-12-31"):
        assert self_hosted_client.get(f"{path}&store={SHOP}").status_code == 200, path


def basic(token: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode()


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "https://evil.example"}, 403),
    ({"Referer": "https://evil.example/page.html"}, 403),
    ({"Origin": "null"}, 403),  # a sandboxed frame or a data: page
    ({"Origin": "http://localhost"}, 404),  # this site's own page: reaches the view (no such dead letter)
    ({"Referer": "http://localhost/ops/stores/x"}, 404),
    ({}, 404),  # no Origin, no Referer: a script, not another site's form
])  # fmt: skip
def test_an_operator_post_from_another_site_is_refused_even_with_basic_credentials(
    runtime: Runtime, self_hosted_client, headers: dict[str, str], status: int,
) -> None:  # fmt: skip
    from tests.conftest import ADMIN_TOKEN

    add_store(runtime)
    url = f"/ops/stores/{SHOP}/deliveries/1/retry"
    response = self_hosted_client.post(url, headers={"Authorization": basic(ADMIN_TOKEN), **headers})
    assert response.status_code == status, response.get_data(as_text=True)[:300]


def test_an_api_client_with_the_bearer_token_and_no_origin_keeps_working(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime)  # the fixture's client sends `Authorization: Bearer <token>` and no Origin
    response = self_hosted_client.post(f"/ops/stores/{SHOP}/deliveries/1/retry")
    assert response.status_code == 404 and response.get_json()["detail"] == "no dead letter with that id for this store"
    assert self_hosted_client.post(f"/ops/stores/{SHOP}/deliveries/1/retry",
                                   headers={"Origin": "https://evil.example"}).status_code == 403
