"""The VLM planner against a local OpenAI-compatible server (stdlib ``http.server`` in a thread)
that answers ``POST /v1/chat/completions`` with scripted replies: valid, invalid-then-repaired,
malformed, slow (timeout), unreachable. No network beyond 127.0.0.1, no timing asserts."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.planning.validate import PlanValidationError
from robot_skills.planning.vlm import (
    VLMEndpointError,
    VLMPlanner,
    VLMPlanRefusedError,
    VLMReplyError,
    build_messages,
    encode_png,
    parse_reply,
    skill_tools,
)

F = frozenset
PROBLEM = SymbolicProblem(
    {"bowl_1": F({"graspable", "surface"}), "plate_1": F({"surface", "pushable"}),
     "stove_1": F({"switchable"}), "table_a": F({"surface", "table_region"})},
    F({("handempty",), ("on", "bowl_1", "table_a"), ("on", "plate_1", "table_a"),
       ("turnoff", "stove_1")}),
    F({("on", "bowl_1", "plate_1")}))


def tool_reply(*calls):
    """A chat-completions body whose assistant message holds ``calls`` as tool calls."""
    tcs = [{"id": f"c{i}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}
           for i, (name, args) in enumerate(calls)]
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": None, "tool_calls": tcs}}]}


def text_reply(text):
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


VALID = tool_reply(("pick", {"obj": "bowl_1"}), ("place_on", {"obj": "bowl_1", "target": "plate_1"}))
INVALID = tool_reply(("place_on", {"obj": "bowl_1", "target": "plate_1"}))  # never picked


class Server:
    """Answers each request with the next scripted item: a dict (JSON body), bytes (raw body),
    or ``("sleep", s, item)``; the last item repeats. Keeps every request body."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.requests.append(json.loads(body))
                item = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if isinstance(item, tuple) and item[0] == "sleep":
                    time.sleep(item[1])
                    item = item[2]
                raw = item if isinstance(item, bytes) else json.dumps(item).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def planner(url, **kw):
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("max_retries", 1)
    p = VLMPlanner(SKILL_SPECS, base_url=url, model="test-model", api_key_env="RS_TEST_NO_KEY",
                   instruction="put the bowl on the plate", **kw)
    p.set_camera(lambda: {"agentview": np.full((8, 6, 3), 200, np.uint8)})
    return p


def test_valid_plan_and_what_the_request_carries():
    with Server([VALID]) as srv:
        plan = planner(srv.url).plan(PROBLEM)
    assert [str(c) for c in plan] == ["pick(bowl_1)", "place_on(bowl_1, plate_1)"]
    assert len(plan.states) == 3 and ("on", "bowl_1", "plate_1") in plan.states[-1]
    (req,) = srv.requests
    assert req["model"] == "test-model"
    tools = {t["function"]["name"]: t["function"] for t in req["tools"]}
    assert set(tools) == set(SKILL_SPECS)
    assert tools["pick"]["parameters"]["properties"]["obj"]["enum"] == ["bowl_1"]
    assert tools["turn_on"]["parameters"]["properties"]["target"]["enum"] == ["stove_1"]
    user = req["messages"][1]["content"]
    text = " ".join(p["text"] for p in user if p["type"] == "text")
    assert "put the bowl on the plate" in text and "bowl_1: graspable, surface" in text
    (img,) = [p for p in user if p["type"] == "image_url"]
    url = img["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    import imageio.v3 as iio

    decoded = iio.imread(base64.b64decode(url.split(",", 1)[1]), extension=".png")
    assert decoded.shape == (8, 6, 3) and int(decoded[0, 0, 0]) == 200


def test_invalid_plan_is_repaired_with_the_validators_messages():
    with Server([INVALID, VALID]) as srv:
        p = planner(srv.url)
        plan = p.plan(PROBLEM)
    assert [c.skill for c in plan] == ["pick", "place_on"]
    assert len(srv.requests) == 2
    feedback = srv.requests[1]["messages"][-1]
    assert feedback["role"] == "user" and "precondition" in feedback["content"]
    assert "(Holding bowl_1)" in feedback["content"]
    assert p.attempts == [["place_on(bowl_1, plate_1)"],
                          ["pick(bowl_1)", "place_on(bowl_1, plate_1)"]]


def test_plan_still_invalid_after_the_repairs_is_refused():
    with Server([INVALID]) as srv:
        with pytest.raises(VLMPlanRefusedError) as e:
            planner(srv.url, max_repairs=2).plan(PROBLEM)
    assert len(srv.requests) == 3
    assert isinstance(e.value, PlanValidationError) and e.value.issues
    assert "refused after 2 repair round(s)" in str(e.value)
    assert len(e.value.attempts) == 3


def test_malformed_replies_are_a_clear_error():
    with Server([text_reply("Sure! First grab the bowl, then put it down somewhere.")]) as srv:
        with pytest.raises(VLMReplyError, match="cannot read the reply"):
            planner(srv.url, max_repairs=1).plan(PROBLEM)
    assert len(srv.requests) == 2  # the garbage went back once for repair
    assert "could not be read" in srv.requests[1]["messages"][-1]["content"]
    with Server([b"this is not json at all"]) as srv:
        with pytest.raises((VLMReplyError, VLMEndpointError)) as e:
            planner(srv.url, max_repairs=0).plan(PROBLEM)
    assert srv.url in str(e.value)


def test_garbage_then_json_content_plan_is_accepted():
    fenced = text_reply('```json\n{"plan": [{"skill": "pick", "args": ["bowl_1"]}, '
                        '"place_on(bowl_1, plate_1)"]}\n```')
    with Server([text_reply("hmm"), fenced]) as srv:
        plan = planner(srv.url, use_tools=False).plan(PROBLEM)
    assert [str(c) for c in plan] == ["pick(bowl_1)", "place_on(bowl_1, plate_1)"]
    assert "tools" not in srv.requests[0]


def test_slow_endpoint_times_out_after_the_retries():
    with Server([("sleep", 3.0, VALID)]) as srv:
        with pytest.raises(VLMEndpointError, match="timed out after 2 attempt"):
            planner(srv.url, timeout_s=0.3, max_retries=1).plan(PROBLEM)
    assert len(srv.requests) == 2


def test_unreachable_endpoint_is_named():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(VLMEndpointError, match="unreachable") as e:
        planner(url, max_retries=2).plan(PROBLEM)
    assert url in str(e.value)


def test_parse_reply_forms_and_errors():
    msg = {"content": "1. pick(bowl_1)\n2. place_on(bowl_1, plate_1)"}
    assert [str(c) for c in parse_reply(msg)] == ["pick(bowl_1)", "place_on(bowl_1, plate_1)"]
    with pytest.raises(VLMReplyError, match="neither"):
        parse_reply({"content": ""})
    bad = {"tool_calls": [{"function": {"name": "pick", "arguments": "{not json"}}]}
    with pytest.raises(VLMReplyError, match="not JSON"):
        parse_reply(bad)
    with pytest.raises(VLMReplyError, match="'plan'"):
        parse_reply({"content": '{"steps": []}'})


def test_tools_and_messages_from_the_contracts():
    tools = skill_tools({"pick": SKILL_SPECS["pick"]})
    (t,) = tools
    assert t["function"]["parameters"]["required"] == ["obj"]
    assert "Preconditions: handempty" in t["function"]["description"]
    msgs = build_messages("do it", PROBLEM, SKILL_SPECS)
    assert msgs[0]["role"] == "system" and len(msgs[1]["content"]) == 1
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="no instruction"):
        VLMPlanner(SKILL_SPECS, base_url="http://127.0.0.1:9/v1").plan(PROBLEM)
    with pytest.raises(ValueError, match="timeout_s"):
        VLMPlanner(SKILL_SPECS, timeout_s=0)


def test_config_builds_the_vlm_and_language_planners():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from robot_skills.cli import config_dir
    from robot_skills.planning.language import LanguagePlanner

    vlm = instantiate(OmegaConf.load(config_dir() / "planner" / "vlm.yaml"))(SKILL_SPECS)
    assert isinstance(vlm, VLMPlanner) and vlm.base_url.endswith("/v1") and vlm.max_repairs >= 1
    lang = instantiate(OmegaConf.load(config_dir() / "planner" / "language.yaml"))(SKILL_SPECS)
    assert isinstance(lang, LanguagePlanner) and lang.symbolic.max_depth == 8
