"""Subjects: one reversible token encoding, builders and parsers that agree for any name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.fieldtypes import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_VERSION, kind_info
from gati_contracts.subjects import (
    CR_ROOT,
    OWNED_ROOT,
    STATUS_ROOT,
    ObjectSubject,
    RoutesSubject,
    SubjectError,
    TrafficSubject,
    cr_subject,
    object_filter,
    owned_subject,
    parse_subject,
    routes_subject,
    status_subject,
    traffic_subject,
)
from gati_contracts.tokens import TokenError, decode_token, encode_token

NATS_FORBIDDEN = set(".*> \t\r\n")
subdomains = st.from_regex(DNS_SUBDOMAIN_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 253)
labels = st.from_regex(DNS_LABEL_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 63)


@given(st.text())
def test_any_string_round_trips_through_one_valid_token(text: str) -> None:
    token = encode_token(text)
    assert token
    assert not NATS_FORBIDDEN & set(token)
    assert decode_token(token) == text


@given(labels)
def test_dns_labels_are_their_own_token(name: str) -> None:
    assert encode_token(name) == name


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("", "_"),
        ("my.app", "my_2eapp"),
        ("/api/users", "_2fapi_2fusers"),
        ("a_b", "a_5fb"),
        ("Ab", "_41b"),
        ("é", "_c3_a9"),
    ],
)
def test_known_encodings(text: str, token: str) -> None:
    assert encode_token(text) == token


@pytest.mark.parametrize("token", ["a.b", "_2", "_zz", "_2F", "_61", "A", "a b", "_ff", "é"])
def test_tokens_not_produced_by_the_encoder_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        decode_token(token)


@given(namespace=labels, name=subdomains)
def test_object_subjects_round_trip(namespace: str, name: str) -> None:
    for root, build, kind in [
        (CR_ROOT, cr_subject, GATI_HANDLER),
        (STATUS_ROOT, status_subject, GATI_VERSION),
        (OWNED_ROOT, owned_subject, DEPLOYMENT),
    ]:
        subject = build(kind.kind, namespace, name)
        assert len(subject.split(".")) == 5
        assert parse_subject(subject) == ObjectSubject(root, kind, namespace, name)


@given(namespace=labels, path=st.text(), version=st.text())
def test_traffic_and_routes_subjects_round_trip(namespace: str, path: str, version: str) -> None:
    assert parse_subject(traffic_subject(namespace, path, version)) == TrafficSubject(
        namespace, path, version
    )
    assert parse_subject(routes_subject(namespace, path)) == RoutesSubject(namespace, path)


def test_subjects_read_as_expected() -> None:
    assert cr_subject("GatiHandler", "shop", "users.v2") == "gati.cr.gatihandler.shop.users_2ev2"
    assert (
        traffic_subject("shop", "/api/users", "v2") == "gati.metrics.traffic.shop._2fapi_2fusers.v2"
    )
    assert routes_subject("shop", "/") == "gati.routes.shop._2f"
    assert object_filter(CR_ROOT) == "gati.cr.*.*.*"
    assert object_filter(CR_ROOT, "GatiVersion", "shop") == "gati.cr.gativersion.shop.*"
    assert object_filter(OWNED_ROOT, "Deployment") == "gati.owned.deployment.*.*"


@pytest.mark.parametrize(
    "subject",
    [
        "gati.cr.pod.ns.name",
        "gati.cr.deployment.ns.name",
        "gati.owned.gatihandler.ns.name",
        "gati.cr.gatihandler.ns",
        "gati.cr.gatihandler.ns.a.b",
        "gati.routes.ns",
        "gati.metrics.traffic.ns.h",
        "gati.metrics.other.ns.h.v",
        "other.cr.gatihandler.ns.name",
        "gati.cr.gatihandler.NS.name",
        "",
    ],
)
def test_foreign_subjects_are_refused(subject: str) -> None:
    with pytest.raises(SubjectError):
        parse_subject(subject)


def test_builders_refuse_kinds_the_root_does_not_carry() -> None:
    with pytest.raises(SubjectError):
        cr_subject("Deployment", "ns", "n")
    with pytest.raises(SubjectError):
        owned_subject("GatiHandler", "ns", "n")
    with pytest.raises(ValueError, match="unknown kind"):
        status_subject("Pod", "ns", "n")
    with pytest.raises(SubjectError):
        object_filter("gati.routes")


def test_kinds_table_is_consistent() -> None:
    assert kind_info("GatiVersion").plural == "gativersions"
    assert GATI_HANDLER.short_name == "gh"
    assert DEPLOYMENT.group == "apps"
    assert GATI_HANDLER.token == "gatihandler"
