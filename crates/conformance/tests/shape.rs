//! The shape checker: each kind of departure is found, with its JSON path, and values that
//! conform give nothing. Then the documented Daydream shapes on typical answers.

use dreamgate_conformance::daydream;
use dreamgate_conformance::shape::{array, check, closed, nullable, open, opt, req, Problem, Shape};
use serde_json::{json, Value};

fn lines(shape: &Shape, value: &Value) -> Vec<String> {
    check(shape, value).iter().map(ToString::to_string).collect()
}

fn pair() -> Shape {
    closed([req("name", Shape::String), opt("size", Shape::Integer)])
}

#[test]
fn a_conforming_value_gives_nothing() {
    assert!(check(&pair(), &json!({ "name": "a", "size": 3 })).is_empty());
    assert!(check(&pair(), &json!({ "name": "a" })).is_empty(), "optional fields may be absent");
}

#[test]
fn a_missing_required_field_is_found() {
    let found = check(&pair(), &json!({ "size": 3 }));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "$.name");
    assert_eq!(found[0].problem, Problem::Missing);
}

#[test]
fn an_extra_field_of_a_closed_object_is_found_and_open_objects_allow_it() {
    assert_eq!(lines(&pair(), &json!({ "name": "a", "foo": 1 })), ["$.foo: not allowed (closed object)"]);
    let open_pair = open([req("name", Shape::String)]);
    assert!(check(&open_pair, &json!({ "name": "a", "foo": 1 })).is_empty());
}

#[test]
fn wrong_types_are_found_integer_included() {
    assert_eq!(
        lines(&pair(), &json!({ "name": 5, "size": 2.5 })),
        ["$.name: expected string, got integer", "$.size: expected integer, got number",]
    );
    assert!(check(&Shape::Integer, &json!(25.0)).is_empty(), "25.0 is an integer in JSON Schema");
    assert_eq!(lines(&Shape::Bool, &json!("true")), ["$: expected bool, got string"]);
    assert_eq!(lines(&Shape::String, &Value::Null), ["$: expected string, got null"]);
    assert_eq!(lines(&pair(), &json!([1])), ["$: expected object, got array"]);
}

#[test]
fn values_outside_an_enum_or_a_literal_are_found() {
    let shape = open([req("state", Shape::Enum(&["ON", "OFF"])), req("ok", Shape::Literal(json!(true)))]);
    assert_eq!(
        lines(&shape, &json!({ "state": "MAYBE", "ok": false })),
        ["$.state: \"MAYBE\" is not one of ON, OFF", "$.ok: expected true, got false",]
    );
    assert_eq!(lines(&shape, &json!({ "state": 1, "ok": true })), ["$.state: expected string, got integer"]);
}

#[test]
fn array_items_and_tuples_are_checked_by_index() {
    let weighted = array(Shape::Tuple(vec![Shape::String, Shape::Number]));
    assert!(check(&weighted, &json!([["a", 1.0], ["b", 2]])).is_empty());
    assert_eq!(
        lines(&weighted, &json!([["a", 1.0], ["b"], [2, 2]])),
        ["$[1]: expected 2 items, got 1", "$[2][0]: expected string, got integer",]
    );
    let nested = closed([req("items", array(pair()))]);
    assert_eq!(
        lines(&nested, &json!({ "items": [{ "name": "a" }, { "name": "b", "x": 0 }] })),
        ["$.items[1].x: not allowed (closed object)"]
    );
}

#[test]
fn maps_check_every_value() {
    let shape = Shape::Map(Box::new(Shape::Number));
    assert!(check(&shape, &json!({ "a": 1, "b": 0.5 })).is_empty());
    assert_eq!(lines(&shape, &json!({ "a": 1, "b": "x" })), ["$.b: expected number, got string"]);
}

#[test]
fn unions_pick_the_closest_alternative_or_name_every_type() {
    let shape = Shape::OneOf(vec![Shape::String, array(Shape::Integer)]);
    assert!(check(&shape, &json!("x")).is_empty());
    assert!(check(&shape, &json!([1, 2])).is_empty());
    assert_eq!(lines(&shape, &json!(true)), ["$: expected string or array, got bool"]);
    assert_eq!(lines(&shape, &json!([1, "2"])), ["$[1]: expected integer, got string"]);
    assert!(check(&nullable(Shape::String), &Value::Null).is_empty());
}

#[test]
fn tagged_objects_follow_their_tag() {
    let shape = Shape::Tagged {
        tag: "kind",
        variants: vec![
            ("a", closed([req("kind", Shape::Literal(json!("a"))), req("x", Shape::Integer)])),
            ("b", closed([req("kind", Shape::Literal(json!("b")))])),
        ],
    };
    assert!(check(&shape, &json!({ "kind": "a", "x": 1 })).is_empty());
    assert_eq!(lines(&shape, &json!({ "kind": "b", "x": 1 })), ["$.x: not allowed (closed object)"]);
    assert_eq!(lines(&shape, &json!({ "kind": "c" })), ["$.kind: \"c\" is not one of a, b"]);
    assert_eq!(lines(&shape, &json!({ "x": 1 })), ["$.kind: missing (required)"]);
}

/// A stream object as Daydream documents it, with the default sd-turbo params.
fn stream() -> Value {
    json!({
        "id": "str_x", "stream_key": "stk_x", "whip_url": "https://ai.livepeer.com/live/video-to-video/stk_x/whip",
        "output_playback_id": "abc", "created_at": "2026-01-01T00:00:00Z", "pipeline": "streamdiffusion",
        "params": serde_json::to_value(dreamgate_model::default_params()).unwrap(),
        "name": "", "author": "a", "from_playground": false, "gateway_host": "g", "is_smoke_test": false,
        "output_stream_url": null,
    })
}

#[test]
fn the_documented_stream_shape_takes_the_default_params_and_flags_echoed_unknown_keys() {
    let s = stream();
    assert_eq!(lines(&daydream::stream(), &s), Vec::<String>::new());
    let mut with_url = s.clone();
    with_url["output_stream_url"] = json!("rtmp://x");
    assert!(check(&daydream::stream(), &with_url).is_empty());
    // the official SDK (0.1.1 on zod 4) fails a call without the key; null is accepted
    let mut without_url = s.clone();
    without_url.as_object_mut().unwrap().remove("output_stream_url");
    assert_eq!(lines(&daydream::stream(), &without_url), ["$.output_stream_url: missing (required)"]);

    let mut echoed = s.clone();
    echoed["params"]["foo"] = json!(1);
    echoed["params"]["image_preprocessing"] =
        json!({ "processors": [{ "type": "blur", "params": {}, "foo": 1 }], "bar": true });
    echoed["params"]["controlnets"][0]["extra"] = json!(0);
    assert_eq!(
        lines(&daydream::stream(), &echoed),
        [
            "$.params.image_preprocessing.processors[0].foo: not allowed (closed object)",
            "$.params.image_preprocessing.bar: not allowed (closed object)",
            "$.params.controlnets[0].extra: not allowed (closed object)",
            "$.params.foo: not allowed (closed object)",
        ]
    );

    let mut wrong = s;
    wrong["params"]["ip_adapter"] = json!({ "enabled": false });
    wrong["params"]["controlnets"][1]["model_id"] = json!("xinsir/controlnet-depth-sdxl-1.0");
    wrong.as_object_mut().unwrap().remove("gateway_host");
    wrong["pipeline"] = json!("live-video-to-video");
    let found = lines(&daydream::stream(), &wrong);
    assert!(found.contains(&"$.gateway_host: missing (required)".to_string()), "{found:?}");
    assert!(found.contains(&"$.pipeline: expected \"streamdiffusion\", got \"live-video-to-video\"".to_string()));
    assert!(found.contains(&"$.params.ip_adapter: not allowed (closed object)".to_string()), "sd-turbo has none");
    assert!(found.iter().any(|l| l.starts_with("$.params.controlnets[1].model_id: \"xinsir/")), "{found:?}");
}

#[test]
fn the_documented_error_list_delete_and_status_shapes() {
    let error = json!({ "success": false, "error": "Stream not found", "code": "STREAMS/NOT_FOUND", "status": 404,
        "details": null, "requestId": "req_1", "traceId": null });
    assert!(check(&daydream::error_body(), &error).is_empty());
    assert_eq!(
        lines(&daydream::error_body(), &json!({ "error": "Not found", "message": "x" })),
        [
            "$.success: missing (required)",
            "$.code: missing (required)",
            "$.status: missing (required)",
            "$.details: missing (required)",
            "$.requestId: missing (required)",
            "$.traceId: missing (required)",
        ]
    );
    let mut wrong = error.clone();
    wrong["requestId"] = json!(7);
    wrong["success"] = json!(true);
    assert_eq!(
        lines(&daydream::error_body(), &wrong),
        ["$.success: expected false, got true", "$.requestId: expected string or null, got integer"]
    );

    assert!(check(&daydream::stream_list(), &json!({ "success": true, "data": [stream()] })).is_empty());
    assert_eq!(
        lines(&daydream::stream_list(), &json!({ "success": true, "data": {} })),
        ["$.data: expected array, got object"]
    );
    assert!(check(&daydream::deleted(), &json!({ "success": true, "data": {} })).is_empty());
    assert_eq!(
        lines(&daydream::deleted(), &json!({ "success": true, "data": { "id": "x" } })),
        ["$.data.id: not allowed (closed object)"]
    );

    let runner = json!({ "success": true, "error": null, "data": {
        "state": "ONLINE", "input_status": { "fps": 30.0, "last_input_time": null },
        "inference_status": { "fps": 29.5, "last_params": {}, "last_params_hash": "ab", "restart_count": 0 },
        "gateway_status": { "whep_url": "https://x/whep" } } });
    assert!(check(&daydream::status(), &runner).is_empty());
    let public = json!({ "success": true, "data": { "inference_status": { "input_fps": 30, "output_fps": 29 } } });
    assert!(check(&daydream::status(), &public).is_empty(), "the public reference's shape");
    let neither = json!({ "success": true, "data": { "state": "SLEEPING", "inference_status": { "fps": 1 } } });
    assert_eq!(lines(&daydream::status(), &neither), [
        "$.data.state: \"SLEEPING\" is not one of LOADING, ONLINE, OFFLINE, DEGRADED_INPUT, DEGRADED_INFERENCE, ERROR",
        "$.data.input_status: missing (required)",
    ]);
}
