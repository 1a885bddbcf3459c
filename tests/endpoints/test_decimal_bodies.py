"""Request bodies keep FHIR decimals exactly: 72.50 goes on the wire as the number 72.50."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pymedplum import MedplumError
from pymedplum._serialization import encode_json
from pymedplum.fhir import Bundle, Observation, Patient
from pymedplum.hooks import PreparedRequest

from .conftest import echo

pytestmark = pytest.mark.anyio


def _observation() -> Observation:
    return Observation.model_validate_json(
        '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},'
        '"valueQuantity":{"value":72.50,"unit":"kg"},"referenceRange":[{"low":{"value":1e2}}]}'
    )


async def test_create_sends_a_model_decimal_with_its_text(make: Any) -> None:
    h = make(echo(201))
    await h.call("create_resource", _observation(), accounts="Organization/a")
    body = h.last.content.decode()
    assert '"value":72.50' in body
    assert '"accounts":[{"reference":"Organization/a"}]' in body


async def test_update_sends_a_model_decimal_with_its_text(make: Any) -> None:
    h = make(echo(200))
    await h.call("update_resource", _observation(), if_match=False)
    assert '"value":72.50' in h.last.content.decode()


async def test_batch_of_models_keeps_decimals(make: Any) -> None:
    h = make(echo(200))
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": _observation().model_dump(by_alias=True, exclude_none=True),
                    "request": {"method": "POST", "url": "Observation"},
                }
            ],
        }
    )
    bundle.entry[0].resource = _observation()  # type: ignore[index]
    await h.call("execute_batch", bundle, accounts="Organization/a")
    assert '"value":72.50' in h.last.content.decode()


async def test_a_dict_body_with_decimal_values_sends_numbers(make: Any) -> None:
    h = make(echo(201))
    await h.call(
        "create_resource",
        {"resourceType": "Observation", "valueQuantity": {"value": Decimal("0.10")}},
    )
    assert h.last.content == (b'{"resourceType":"Observation","valueQuantity":{"value":0.10}}')


def test_encode_json_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(
        TypeError, match=r"request body\.x is a set, which is not JSON serializable"
    ):
        encode_json({"x": {1, 2}})
    with pytest.raises(ValueError, match="not a JSON number"):
        encode_json({"x": Decimal("NaN")})


def test_a_marker_lookalike_string_is_left_alone() -> None:
    text = "\x00fhir-number:12"
    assert encode_json({"note": text}) == b'{"note":"\\u0000fhir-number:12"}'


# --- responses: typed results keep the server's decimal text -------------------------------

_OBS_TEXT = (
    '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},'
    '"valueQuantity":{"value":72.50,"unit":"kg"}}'
)
_PAGE = '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":' + _OBS_TEXT + "}]}"


def _raw(status: int, text: str) -> Any:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=text.encode(), headers={"Content-Type": "application/fhir+json"}
        )

    return handler


async def test_read_as_model_keeps_decimal_text(make: Any) -> None:
    h = make(_raw(200, _OBS_TEXT))
    obs = await h.call("read_resource", "Observation", "o1", as_fhir=Observation)
    assert '"value":72.50' in obs.model_dump_json(by_alias=True, exclude_none=True)


async def test_pages_as_model_keep_decimal_text(make: Any) -> None:
    h = make(_raw(200, _PAGE))
    (obs,) = await h.collect("search_resource_pages", "Observation", as_fhir=Observation)
    assert '"value":72.50' in obs.model_dump_json(by_alias=True, exclude_none=True)


async def test_typed_bundle_keeps_decimal_text(make: Any) -> None:
    h = make(_raw(200, _PAGE))
    bundle = await h.call(
        "search_resources", "Observation", return_bundle=True, as_fhir=Observation
    )
    (obs,) = bundle.get_resources_typed(Observation)
    assert '"value":72.50' in obs.model_dump_json(by_alias=True, exclude_none=True)


_EXPONENTS = (
    '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
    '"valueQuantity":{"value":1e-7},"referenceRange":[{"low":{"value":1.5e3},'
    '"high":{"value":0.0000001}}]}'
)


@pytest.mark.parametrize("accounts", [None, "Organization/a"])
async def test_exponent_and_small_decimals_go_on_the_wire_as_written(
    make: Any, accounts: str | None
) -> None:
    h = make(echo(201))
    await h.call("create_resource", Observation.model_validate_json(_EXPONENTS), accounts=accounts)
    body = h.last.content.decode()
    for text in ('"value":1e-7', '"value":1.5e3', '"value":0.0000001'):
        assert text in body


async def test_a_model_without_accounts_is_sent_as_its_own_json(make: Any) -> None:
    h = make(echo(201))
    observation = Observation.model_validate_json(_EXPONENTS)
    await h.call("create_resource", observation)
    assert h.last.content == observation.model_dump_json(by_alias=True, exclude_none=True).encode()
    await h.call("update_resource", _observation())  # If-Match from the model's meta, id
    assert str(h.last.url).endswith("/Observation/o1")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_in_a_response_are_not_json(make: Any, constant: str) -> None:
    # Python's and pydantic's JSON readers accept these by default. A server never sends them
    # (JSON.stringify writes null); read into a dict, a NaN would be written back as NaN.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient/1"):
            body = f'{{"resourceType":"Patient","id":"1","extra":{constant}}}'
        else:
            body = f'{{"resourceType":"Bundle","type":"searchset","total":{constant}}}'
        return httpx.Response(200, text=body, headers={"Content-Type": "application/fhir+json"})

    h = make(handler)
    with pytest.raises(MedplumError, match=r"expected a JSON response body.*line 1") as info:
        await h.call("read_resource", "Patient", "1")
    assert info.value.status_code == 200
    with pytest.raises(MedplumError, match="expected a JSON response body"):
        await h.call("read_resource", "Patient", "1", as_fhir=Patient)
    with pytest.raises(MedplumError, match="expected a JSON response body"):
        await h.call("search_resources", "Patient", return_bundle=True, as_fhir=Patient)
    with pytest.raises(MedplumError, match="expected a JSON response body"):
        await h.call("search_resources", "Patient")


# A JavaScript server (Medplum) writes numbers below 1e-6 and from 1e21 up in exponent form.
_JS_EXPONENTS = (
    '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},'
    '"valueQuantity":{"value":1e-7},"referenceRange":[{"high":{"value":1.0000000000000001e+23}}],'
    '"unknownElement":[2.5e-8]}'
)


async def test_typed_search_results_keep_exponent_text(make: Any) -> None:
    # A typed read keeps "1e-7"; the typed search paths wrote it back as 0.0000001, and
    # 1.0000000000000001e+23 as the integer 100000000000000010000000.
    page = '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":' + _JS_EXPONENTS
    page += "}]}"
    h = make(_raw(200, page))
    (paged,) = await h.collect("search_resource_pages", "Observation", as_fhir=Observation)
    bundle = await h.call(
        "search_resources", "Observation", return_bundle=True, as_fhir=Observation
    )
    (listed,) = bundle.get_resources_typed(Observation)
    (iterated,) = list(bundle)
    h = make(_raw(200, _JS_EXPONENTS))
    read = await h.call("read_resource", "Observation", "o1", as_fhir=Observation)
    for obs in (paged, listed, iterated, read):
        assert obs.model_dump_json(by_alias=True, exclude_none=True) == _JS_EXPONENTS


async def test_a_before_request_hook_editing_the_body_keeps_the_other_decimals_text(
    make: Any,
) -> None:
    # The hook gets the body decoded; when it edits it the body is encoded again, and plain
    # Decimals were written by str(): 0.0000001 and 1e-7 both went out as 1E-7.
    def tag(request: PreparedRequest) -> PreparedRequest:
        body = dict(request.json_body)
        body["meta"] = {"tag": [{"code": "hooked"}]}
        return dataclasses.replace(request, json_body=body)

    h = make(echo(201), before_request=tag)
    await h.call("create_resource", Observation.model_validate_json(_EXPONENTS))
    body = h.last.content.decode()
    assert '"tag":[{"code":"hooked"}]' in body
    for text in ('"value":1e-7', '"value":1.5e3', '"value":0.0000001'):
        assert text in body


async def test_a_typed_bundles_dicts_are_plain_json_as_without_as_fhir(make: Any) -> None:
    # With as_fhir the whole answer was decoded with Decimals: the included Patient, raw and
    # get_resources() held Decimal values, and json.dumps of them raised TypeError.
    patient = (
        '{"resourceType":"Patient","id":"p1","_birthDate":{"extension":[{"url":"http://x",'
        '"valueDecimal":7.50}]}}'
    )
    page = (
        '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":'
        + _OBS_TEXT
        + ',"search":{"mode":"match"}},{"resource":'
        + patient
        + ',"search":{"mode":"include"}}]}'
    )
    h = make(_raw(200, page))
    typed = await h.call("search_resources", "Observation", return_bundle=True, as_fhir=Observation)
    plain = await h.call("search_resources", "Observation", return_bundle=True)
    observation, included = list(typed)
    assert isinstance(observation, Observation)
    assert '"value":72.50' in observation.model_dump_json(by_alias=True, exclude_none=True)
    assert included == plain.get_resources("Patient")[0]
    assert typed.raw == plain.raw
    assert json.loads(json.dumps(typed.raw)) == json.loads(page)
    assert json.dumps(typed.get_resources()) == json.dumps(plain.get_resources())
    assert typed.entry_results()[1].resource == included
    (typed_patient,) = typed.get_resources_typed(Patient)
    assert typed_patient.model_dump_json(by_alias=True, exclude_none=True) == patient


async def test_a_lone_surrogate_in_a_dict_body_is_a_value_error_naming_the_element(
    make: Any,
) -> None:
    # json.loads reads "\ud83c" (half an emoji, as JavaScript can cut one) as a lone surrogate;
    # the body's UTF-8 encoding failed with "can't encode character ... in position 45".
    h = make(echo(201))
    patient = {"resourceType": "Patient", "name": [{"given": ["Bo", "\ud83c"]}]}
    with pytest.raises(ValueError, match=r"^request body\.name\[0\]\.given\[1\] holds a lone"):
        await h.call("create_resource", patient)
    with pytest.raises(ValueError, match=r"^a key in request body\.entry\[0\] holds a lone"):
        await h.call("execute_batch", {"resourceType": "Bundle", "entry": [{"\udc00": 1}]})
    assert h.requests == []


async def test_read_modify_write_with_a_float_assigned_to_a_decimal(make: Any) -> None:
    # The update sent "value":1.500000 for obs.value_quantity.value = 1.5 (and 0.000000 for
    # 1e-7); the other decimals keep the server's text.
    h = make(_raw(200, _OBS_TEXT.replace("}}", '},"referenceRange":[{"low":{"value":1e-7}}]}')))
    obs = await h.call("read_resource", "Observation", "o1", as_fhir=Observation)
    assert obs.value_quantity is not None
    obs.value_quantity.value = 1.5  # type: ignore[assignment]
    await h.call("update_resource", obs)
    body = h.last.content.decode()
    assert '"valueQuantity":{"value":1.5,"unit":"kg"}' in body
    assert '"low":{"value":1e-7}' in body
