"""Overpass query, parsing of a recorded-shape response, cache, and fallback to the bundled list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import requests

from pipeline.clinics import overpass
from pipeline.clinics.errors import OverpassError
from pipeline.clinics.overpass import OverpassClient, build_query, cache_key, parse_elements
from pipeline.clinics.search import search_facilities, to_dataframe

FIXTURE = Path(__file__).parent / "fixtures" / "overpass_sample.json"
CAIRO = (30.0444, 31.2357)


class FakeTransport:
    """Records calls; answers from a list of responses (str body or exception to raise)."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls: list[tuple[str, str, float, dict]] = []

    def __call__(self, url, query, timeout, headers):
        self.calls.append((url, query, timeout, headers))
        resp = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(resp, BaseException):
            raise resp
        return resp


def must_not_call(*_args, **_kwargs):
    raise AssertionError("network used although it should not be")


@pytest.fixture
def body() -> str:
    return FIXTURE.read_text(encoding="utf-8")


@pytest.fixture
def client_factory(tmp_path):
    def make(transport, **kw):
        return OverpassClient(transport=transport, cache_dir=tmp_path / "overpass", **kw)

    return make


# --- query -----------------------------------------------------------------------------------


def test_build_query_for_point_and_radius():
    q = build_query(30.0444, 31.2357, 5)
    assert q.startswith("[out:json]")
    assert "(around:5000,30.04440,31.23570)" in q
    assert '"amenity"~"^(hospital|clinic|doctors)$"' in q
    assert "healthcare:speciality" in q
    assert "nwr" in q and "out center" in q
    assert "around:2500," in build_query(0, 0, 2.5)


# --- parsing ---------------------------------------------------------------------------------


def test_parse_recorded_response(body):
    facs = parse_elements(json.loads(body))
    by_name = {f.name: f for f in facs}
    assert len(facs) == 5  # duplicate node of the hospital and the way without center dropped
    assert "Way Without Center" not in by_name

    nile = by_name["Nile Women's Imaging Clinic"]
    assert (nile.lat, nile.lon, nile.kind) == (30.0452, 31.2362, "clinic")
    assert nile.breast_relevant and nile.specialities == "radiology; gynaecology"
    assert nile.address == "12 Qasr El Nil Street, Cairo"
    assert nile.phone == "+20 2 0000 0001" and nile.website.startswith("https://")
    assert nile.osm_url.endswith("/node/1000000001")

    hosp = by_name["Example Oncology Hospital"]  # a way: coordinates from "center"
    assert (hosp.lat, hosp.lon, hosp.kind) == (30.0310, 31.2290, "hospital")
    assert hosp.breast_relevant and hosp.osm_url.endswith("/way/2000000002")

    assert by_name["Dr. Example General Practice"].kind == "doctors"
    assert not by_name["Dr. Example General Practice"].breast_relevant
    mammo = by_name["Early Detection Mammography Unit"]
    assert mammo.breast_relevant and mammo.phone == "+20 2 0000 0004"
    general = by_name["Example General Hospital"]  # a relation with center
    assert general.lat == 30.1 and not general.breast_relevant


@pytest.mark.parametrize("payload", [{}, [], {"elements": "nope"}, None])
def test_parse_rejects_non_overpass_payload(payload):
    with pytest.raises(OverpassError):
        parse_elements(payload)


def test_parse_skips_bad_elements():
    facs = parse_elements({"elements": [{"type": "node", "lat": 200, "lon": 0, "tags": {"amenity": "clinic"}},
                                        "garbage", {"type": "node", "lat": 1, "lon": 2}]})
    assert [(f.name, f.kind) for f in facs] == [("Unnamed clinic", "clinic")]


# --- client, transport and cache -------------------------------------------------------------


def test_fetch_sends_user_agent_and_short_timeout(body, client_factory):
    transport = FakeTransport(body)
    facs, cached = client_factory(transport).fetch(*CAIRO, 5)
    assert len(facs) == 5 and cached is False
    url, query, timeout, headers = transport.calls[0]
    assert url == overpass.ENDPOINTS[0]
    assert "around:5000,30.04000,31.24000" in query  # point rounded like the cache key
    assert timeout <= 10
    assert headers["User-Agent"].startswith("busi-cad-dashboard/")


def test_cache_hit_avoids_network(body, client_factory, tmp_path):
    client_factory(FakeTransport(body)).fetch(*CAIRO, 5)
    files = list((tmp_path / "overpass").glob("*.json"))
    assert [f.stem for f in files] == [cache_key(30.04, 31.24, 5)]
    # same rounded point (~1 km away) and radius: served from disk, transport never called
    facs, cached = client_factory(must_not_call).fetch(30.0401, 31.2389, 5)
    assert cached is True and len(facs) == 5
    # a different radius is a different key
    transport = FakeTransport(body)
    client_factory(transport).fetch(*CAIRO, 10)
    assert len(transport.calls) == 1


def test_cache_expires(body, client_factory):
    now = [1_000_000.0]
    client_factory(FakeTransport(body), clock=lambda: now[0]).fetch(*CAIRO, 5)
    now[0] += overpass.CACHE_TTL_S + 1
    transport = FakeTransport(body)
    _, cached = client_factory(transport, clock=lambda: now[0]).fetch(*CAIRO, 5)
    assert cached is False and len(transport.calls) == 1


def test_corrupt_cache_file_is_ignored(body, client_factory, tmp_path):
    d = tmp_path / "overpass"
    d.mkdir()
    (d / f"{cache_key(30.04, 31.24, 5)}.json").write_text("{not json")
    transport = FakeTransport(body)
    facs, cached = client_factory(transport).fetch(*CAIRO, 5)
    assert not cached and len(facs) == 5


def test_second_endpoint_used_when_first_fails(body, client_factory):
    transport = FakeTransport(OverpassError("overpass-api.de timed out"), body)
    facs, _ = client_factory(transport).fetch(*CAIRO, 5)
    assert len(facs) == 5
    assert [c[0] for c in transport.calls] == list(overpass.ENDPOINTS[:2])


def test_all_endpoints_fail_raises(client_factory):
    transport = FakeTransport(ConnectionError("no route"))
    with pytest.raises(OverpassError, match="no route"):
        client_factory(transport).fetch(*CAIRO, 5)
    assert len(transport.calls) == len(overpass.ENDPOINTS)


# --- default requests transport, with requests.post faked --------------------------------------


class _Resp:
    def __init__(self, status, text=""):
        self.status_code, self.text = status, text

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}", response=self)


def test_requests_transport_maps_errors(monkeypatch):
    def timeout(*a, **k):
        raise requests.Timeout("slow")

    monkeypatch.setattr(requests, "post", timeout)
    with pytest.raises(OverpassError, match="timed out"):
        overpass.requests_transport("https://x", "q", 8, {})
    monkeypatch.setattr(requests, "post", lambda *a, **k: _Resp(503))
    with pytest.raises(OverpassError, match="HTTP 503"):
        overpass.requests_transport("https://x", "q", 8, {})
    seen = {}

    def ok(url, data, timeout, headers):
        seen.update(url=url, data=data, timeout=timeout, headers=headers)
        return _Resp(200, '{"elements": []}')

    monkeypatch.setattr(requests, "post", ok)
    assert overpass.requests_transport("https://x", "q", 8, {"User-Agent": "ua"}) == '{"elements": []}'
    assert seen["data"] == {"data": "q"} and seen["timeout"] == 8


# --- search: live first, bundled fallback with a message -------------------------------------


def test_search_live(body, client_factory):
    res = search_facilities(*CAIRO, 10, client=client_factory(FakeTransport(body)), offline=False)
    assert res.source == "live" and res.is_live
    assert "OpenStreetMap" in res.message
    d = [f.distance_km for f in res.facilities]
    assert d == sorted(d) and all(x <= 10 for x in d)
    assert res.facilities[0].name == "Nile Women's Imaging Clinic"
    df = to_dataframe(res.facilities)
    assert list(df["Name"]) == [f.name for f in res.facilities]
    assert {"Name", "Type", "Distance (km)", "City / address", "Website", "Phone"} <= set(df.columns)


def test_search_radius_filters_live_results(body, client_factory):
    res = search_facilities(*CAIRO, 2, client=client_factory(FakeTransport(body)), offline=False)
    assert res.is_live and all(f.distance_km <= 2 for f in res.facilities)
    assert "Example General Hospital" not in {f.name for f in res.facilities}


@pytest.mark.parametrize(
    "failure,needle",
    [
        (OverpassError("https://overpass-api.de/api/interpreter timed out after 8 s"), "timed out"),
        (OverpassError("https://overpass-api.de/api/interpreter answered HTTP 504"), "HTTP 504"),
        ("<html>rate limited</html>", "malformed JSON"),
        ('{"remark": "runtime error"}', "elements"),
    ],
)
def test_search_falls_back_to_bundled_list(client_factory, failure, needle):
    res = search_facilities(*CAIRO, 20, client=client_factory(FakeTransport(failure)), offline=False)
    assert res.source == "offline" and not res.is_live
    assert needle in res.message and "offline list" in res.message
    names = [f.name for f in res.facilities]
    assert "National Cancer Institute (Cairo University)" in names
    assert all(f.distance_km <= 20 for f in res.facilities)


def test_empty_live_result_falls_back(client_factory):
    res = search_facilities(*CAIRO, 5, client=client_factory(FakeTransport('{"elements": []}')), offline=False)
    assert res.source == "offline" and "no hospital" in res.message


def test_offline_env_skips_network(monkeypatch, client_factory):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    res = search_facilities(*CAIRO, 20, client=client_factory(must_not_call))
    assert res.source == "offline" and "BUSI_OFFLINE" in res.message


def test_offline_far_from_everything_shows_nearest():
    res = search_facilities(-48.0, -120.0, 10, offline=True)  # South Pacific
    assert res.source == "offline" and len(res.facilities) == 10
    assert "nearest" in res.message


def test_cli_search_offline(capsys):
    from pipeline.cli import clinics as clinics_commands

    parser = argparse.ArgumentParser()
    clinics_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["clinics", "search", "Cairo, Egypt", "--radius", "20", "--offline"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Cairo, Egypt" in out and "offline list" in out
    assert "National Cancer Institute (Cairo University)" in out
