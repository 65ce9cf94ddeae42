"""JSONPath selection, ResultPath placement, payload templates and intrinsic functions."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from gateway.services.workflows.errors import StatesError
from gateway.services.workflows.paths import (
    PathSyntaxError,
    check_template,
    compile_path,
    place,
    render,
    select,
)

DATA = {"a": {"b": [10, 20, 30]}, "items": [{"x": 1, "y": "p"}, {"x": 5, "y": "q"}], "s": "hi"}


def test_definite_paths_select_one_value_and_others_a_list():
    assert select("$", DATA) is DATA
    assert select("$.a.b[1]", DATA) == 20
    assert select("$.a.b[-1]", DATA) == 30
    assert select("$.items[*].y", DATA) == ["p", "q"]
    assert select("$.items[?(@.x > 2)].y", DATA) == ["q"]


def test_a_missing_definite_path_is_a_runtime_error():
    with pytest.raises(StatesError) as caught:
        select("$.nope", DATA)
    assert caught.value.error == "States.Runtime"


def test_context_paths_read_the_context_object():
    assert select("$$.Execution.Id", DATA, {"Execution": {"Id": "ex_1"}}) == "ex_1"


def test_bad_paths_do_not_compile():
    for bad in ("a.b", "$.a[", "$..[", ""):
        with pytest.raises(PathSyntaxError):
            compile_path(bad)


def test_place_puts_the_result_without_touching_the_input():
    data = {"data": {"val1": 23}}
    out = place(data, "$.data.result", "ok")
    assert out == {"data": {"val1": 23, "result": "ok"}}
    assert data == {"data": {"val1": 23}}
    assert place(data, "$", 5) == 5
    assert place({}, "$.x.y", 1) == {"x": {"y": 1}}
    with pytest.raises(StatesError):
        place("a string", "$.x", 1)


def test_templates_evaluate_dollar_keys():
    template = {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size.$": "$.product.details.size", "StaticValue": "foo"},
        "list": [{"v.$": "$.product.availability"}],
        "id.$": "$$.Execution.Id",
    }
    data = {"product": {"details": {"size": "4"}, "availability": "in stock"}}
    assert render(template, data, {"Execution": {"Id": "ex_9"}}) == {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size": "4", "StaticValue": "foo"},
        "list": [{"v": "in stock"}],
        "id": "ex_9",
    }


def test_intrinsics():
    data = {"name": "Ada", "n": 3, "text": '{"k": [1, 2]}', "obj": {"a": 1}}
    template = {
        "greeting.$": "States.Format('Hello, {}! You are {}.', $.name, $.n)",
        "parsed.$": "States.StringToJson($.text)",
        "text.$": "States.JsonToString($.obj)",
        "array.$": "States.Array($.name, 1, 'two', null, States.Array(true))",
        "escaped.$": "States.Format('a \\{\\} {} it\\'s', $.name)",
        "length.$": "States.ArrayLength(States.Array(1, 2, 3))",
    }
    assert render(template, data, {}) == {
        "greeting": "Hello, Ada! You are 3.",
        "parsed": {"k": [1, 2]},
        "text": '{"a":1}',
        "array": ["Ada", 1, "two", None, [True]],
        "escaped": "a {} Ada it's",
        "length": 3,
    }


def test_intrinsic_failures_are_named_errors():
    with pytest.raises(StatesError) as caught:
        render({"x.$": "States.StringToJson($.s)"}, {"s": "not json"}, {})
    assert caught.value.error == "States.IntrinsicFailure"


def test_template_problems_are_found_before_running():
    assert check_template({"ok.$": "$.a", "nested": {"fine": 1}}) == []
    found = check_template({"a.$": "States.Nope(1)", "b": [{"c.$": "$.x["}], "d.$": 5})
    assert len(found) == 3
    assert any("unknown intrinsic function States.Nope" in p for p in found)


def test_an_array_range_past_its_bound_fails_before_it_is_made():
    """ArrayRange(0, 10**10, 1) built its list (80 GB) before counting it."""
    tracemalloc.start()
    try:
        with pytest.raises(StatesError) as caught:
            render({"r.$": "States.ArrayRange(0, $.end, 1)"}, {"end": 10**10}, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.error == "States.IntrinsicFailure" and "1000" in caught.value.cause
    assert peak < 1 << 20
    assert render({"r.$": "States.ArrayRange(1, 9, 4)"}, {}, {}) == {"r": [1, 5, 9]}


@pytest.mark.parametrize("number", ["9" * 5000, "٣", "1e999"])
def test_a_number_an_intrinsic_cannot_hold_is_a_definition_problem(number):
    """Not a ValueError escaping the check (a 500 on create)."""
    found = check_template({"a.$": f"States.Array({number})"})
    assert len(found) == 1, found


def test_array_unique_and_contains_compare_json_values():
    """true is not 1 (nor false 0) in JSON, as Step Functions has it; Python's == said so."""
    items = [1, True, 1.0, "1", {"a": 1}, {"a": True}, [1], [True], False, 0, None, 0.0, [1]]
    assert render({"u.$": "States.ArrayUnique($.items)"}, {"items": items}, {}) == {
        "u": [1, True, "1", {"a": 1}, {"a": True}, [1], [True], False, 0, None]
    }
    found = render(
        {"t.$": "States.ArrayContains($.items, true)", "f.$": "States.ArrayContains($.ones, true)"},
        {"items": items, "ones": [1, [True]]},
        {},
    )
    assert found == {"t": True, "f": False}


def test_array_unique_is_linear():
    """20,000 distinct objects: ~2e8 comparisons one by one (tens of seconds) before."""
    items = [{"n": n, "tags": ["x", n]} for n in range(20_000)]
    started = time.perf_counter()
    out = render({"u.$": "States.ArrayUnique($.items)"}, {"items": items + items[:5]}, {})
    assert out == {"u": items}
    # NOTE: ~0.16 s here, but 1.7-2.1 s beside 20 busy loops (a full run's load): the old
    # 2 s bound failed there; quadratic is still far past 10 s.
    assert time.perf_counter() - started < 10
