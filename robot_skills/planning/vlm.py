"""The ``vlm`` planner backend: any OpenAI-compatible chat endpoint composes the skills.

The request (one ``POST {base_url}/chat/completions`` through the official ``openai`` client)
carries the instruction, the current camera image(s) as base64 PNG ``image_url`` parts, the
scene's entities with their affordance tags and the predicates that hold now, and the library's
skills as a JSON tool schema generated from the skill contracts (:func:`skill_tools`: one
function per skill, each parameter an ``enum`` of the entities whose tags fit). The reply is read
as the assistant's tool calls in order, or — for servers without tool calling — a JSON
``{"plan": [{"skill": ..., "args": [...]}]}`` / ``["verb(a, b)", ...]`` in the content
(:func:`parse_reply`).

Every plan is checked with :func:`~robot_skills.planning.validate.validate_plan` before it is
returned. An invalid or unreadable plan goes back to the model with the validator's messages,
for at most ``max_repairs`` rounds (self-refinement with a validator in the loop, as ISR-LLM:
Zhou et al., 2024); then :class:`VLMPlanRefusedError` (a
:class:`~robot_skills.planning.validate.PlanValidationError`) or :class:`VLMReplyError` is raised.
Transport failures (unreachable, timeout, HTTP 429/5xx) are retried ``max_retries`` times with
exponential back-off, then :class:`VLMEndpointError` names the endpoint.

Servers: vLLM (``vllm serve ...``), Ollama (``http://localhost:11434/v1``), llama.cpp
``llama-server``, LM Studio, or a cloud API; see ``docs/language.md``. The API key is read from
the environment variable ``api_key_env`` (a local server accepts any key).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.domain.predicates import SymbolicProblem, format_atom
from robot_skills.domain.verbs import SkillSpec
from robot_skills.planning.symbolic import Plan, SkillCall
from robot_skills.planning.validate import PlanValidationError, validate_plan, validate_plan_strict
from robot_skills.tasks.bddl import BddlTask, load_bddl

__all__ = ["VLMError", "VLMEndpointError", "VLMReplyError", "VLMPlanRefusedError", "VLMPlanner",
           "skill_tools", "encode_png", "build_messages", "parse_reply"]


class VLMError(RuntimeError):
    """Base of the VLM backend's errors."""


class VLMEndpointError(VLMError):
    """The endpoint could not be reached or kept failing (after retries); names the URL."""


class VLMReplyError(VLMError):
    """The model's replies could not be read as skill calls, even after repair rounds."""


class VLMPlanRefusedError(PlanValidationError):
    """The model's plan was still invalid after ``max_repairs`` repair rounds.

    Attributes:
        issues: the validator's issues on the last plan. attempts: every plan the model sent.
    """

    def __init__(self, message: str, issues: Sequence[Any] = (),
                 attempts: Sequence[list[str]] = ()) -> None:
        super().__init__(message, issues)
        self.attempts = [list(a) for a in attempts]


# ------------------------------------------------------------------------------ request parts
def skill_tools(specs: Mapping[str, SkillSpec],
                entities: Mapping[str, frozenset[str]] | None = None) -> list[dict[str, Any]]:
    """The library's skills as OpenAI ``tools`` (JSON Schema function definitions).

    Each skill is a function named after it; its description is the contract's sentence plus the
    preconditions and effects; each parameter is a string, restricted (``enum``) to the entities
    whose tags include the parameter's type when ``entities`` is given.

    Returns:
        A list of ``{"type": "function", "function": {...}}`` dicts, sorted by skill name.
    """
    tools = []
    for name in sorted(specs):
        s = specs[name]
        props: dict[str, Any] = {}
        for p in s.parameters:
            prop: dict[str, Any] = {"type": "string",
                                    "description": f"an entity tagged `{p.type}`"}
            if entities is not None:
                prop["enum"] = sorted(e for e, t in entities.items() if p.type in t)
            props[p.name] = prop
        desc = (f"{s.description} Preconditions: {', '.join(s.preconditions) or 'none'}. "
                f"Effects: adds {', '.join(s.add_effects) or 'nothing'}; removes "
                f"{', '.join(s.del_effects) or 'nothing'}.")
        tools.append({"type": "function", "function": {
            "name": name, "description": desc,
            "parameters": {"type": "object", "properties": props,
                           "required": [p.name for p in s.parameters],
                           "additionalProperties": False}}})
    return tools


def encode_png(image: np.ndarray) -> str:
    """A camera image as a ``data:image/png;base64,...`` URL.

    Args:
        image: ``(H, W, 3)`` or ``(H, W)`` uint8 (or float in [0, 1]).

    Raises:
        ValueError: on another shape.
    """
    import imageio.v3 as iio

    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"camera image must be (H, W[, 1|3|4]), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    buf = iio.imwrite("<bytes>", a, extension=".png")
    return "data:image/png;base64," + base64.b64encode(buf).decode("ascii")


_SYSTEM = (
    "You are the task planner of a robot arm. Compose the robot's skills into a plan that "
    "carries out the instruction in the scene shown. Use only the skills offered as tools and "
    "only the listed entities as arguments, in the skill's parameter order. Reply with the "
    "skill calls in execution order as tool calls, or, if you cannot call tools, with JSON "
    '{"plan": [{"skill": "<name>", "args": ["<entity>", ...]}, ...]} and nothing else.')


def build_messages(instruction: str, problem: SymbolicProblem, specs: Mapping[str, SkillSpec],
                   images: Mapping[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """The chat messages of a planning request (system + one user message with images).

    The user text lists the instruction, the skills' signatures, every entity with its tags, the
    predicates that hold now and (when the problem has one) the goal atoms to reach.
    """
    sig = [f"{s.name}({', '.join(f'{p.name}: {p.type}' for p in s.parameters)}) — "
           f"{s.description}" for s in (specs[k] for k in sorted(specs))]
    ents = [f"{e}: {', '.join(sorted(t)) or '-'}" for e, t in sorted(problem.entities.items())]
    state = [format_atom(a) for a in sorted(problem.state) if a[0] != "accessible"]
    lines = [f"Instruction: {instruction}", "", "Skills:", *sig, "", "Entities (name: tags):",
             *ents, "", "True now: " + (" ".join(state) or "nothing")]
    if problem.goal:
        lines.append("Goal to reach: " + " ".join(format_atom(a) for a in sorted(problem.goal)))
    content: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(lines)}]
    for name, img in sorted((images or {}).items()):
        content.append({"type": "text", "text": f"Camera '{name}':"})
        content.append({"type": "image_url", "image_url": {"url": encode_png(img)}})
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": content}]


def _strip_fences(text: str) -> str:
    m = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    return m.group(1) if m else text


def parse_reply(message: Any) -> list[SkillCall]:
    """Skill calls from an assistant message (an ``openai`` message object or a dict).

    Tool calls are read in order (``arguments`` a JSON object keyed by parameter name, or a
    list); otherwise the content is read as JSON (``{"plan": [...]}`` or a list of calls, each a
    ``{"skill", "args"}`` mapping or a ``"verb(a, b)"`` string), or as one ``verb(a, b)`` per line.

    Raises:
        VLMReplyError: naming what could not be read.
    """
    get = (lambda k: message.get(k)) if isinstance(message, Mapping) else (
        lambda k: getattr(message, k, None))
    tool_calls = get("tool_calls") or []
    calls: list[SkillCall] = []
    if tool_calls:
        for tc in tool_calls:
            fn = tc.get("function") if isinstance(tc, Mapping) else getattr(tc, "function", None)
            name = fn.get("name") if isinstance(fn, Mapping) else getattr(fn, "name", None)
            raw = fn.get("arguments") if isinstance(fn, Mapping) else getattr(fn, "arguments", None)
            if not name:
                raise VLMReplyError(f"tool call without a function name: {tc!r}")
            try:
                args = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
            except json.JSONDecodeError as e:
                raise VLMReplyError(f"tool call {name}: arguments are not JSON ({e}): "
                                    f"{str(raw)[:200]!r}") from e
            if isinstance(args, Mapping):
                vals = list(args.get("args", args.values()) if "args" in args else args.values())
            elif isinstance(args, list):
                vals = args
            else:
                raise VLMReplyError(f"tool call {name}: arguments must be an object, got "
                                    f"{str(raw)[:200]!r}")
            calls.append(SkillCall(str(name), tuple(str(v) for v in vals)))
        return calls
    content = get("content")
    if isinstance(content, list):  # content parts
        content = " ".join(str(p.get("text", "")) if isinstance(p, Mapping) else str(p)
                           for p in content)
    text = (content or "").strip()
    if not text:
        raise VLMReplyError("the reply has neither tool calls nor content")
    body = _strip_fences(text).strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if data is not None:
        items = data.get("plan") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise VLMReplyError(f"JSON reply without a 'plan' list: {body[:200]!r}")
        try:
            return [SkillCall.coerce(x) for x in items]
        except (ValueError, TypeError) as e:
            raise VLMReplyError(f"plan entry not a skill call ({e}): {body[:200]!r}") from e
    lines = [ln.strip(" -*0123456789.\t") for ln in body.splitlines() if ln.strip()]
    try:
        calls = [SkillCall.parse(ln) for ln in lines]
    except ValueError as e:
        raise VLMReplyError(f"cannot read the reply as skill calls: {text[:200]!r}") from e
    if not calls:
        raise VLMReplyError(f"no skill calls in the reply: {text[:200]!r}")
    return calls


# ------------------------------------------------------------------------------ the planner
class VLMPlanner:
    """Planner backend over an OpenAI-compatible chat endpoint (see the module docstring).

    Implements :class:`~robot_skills.execution.interfaces.Planner`; built as
    ``VLMPlanner(specs, base_url=..., model=...)`` (the config's partial, ``planner(specs)``).

    Args:
        specs: the library's skill contracts: the only tools offered, and what plans are
            validated against.
        base_url: the endpoint's OpenAI-compatible root, e.g. ``http://localhost:8000/v1``.
        model: the model name the server knows.
        api_key_env: environment variable holding the key (unset: ``"EMPTY"``, which local
            servers accept).
        timeout_s: per-request timeout, s.
        max_retries: transport retries per request (timeouts, connection errors, 429, 5xx).
        backoff_s: first back-off, doubled per retry, s.
        max_repairs: rounds in which an invalid/unreadable plan is sent back with the messages.
        temperature / max_tokens: sampling settings.
        use_tools: offer the skills as tools (``False``: ask for the JSON plan in the content,
            for servers without tool calling).
        instruction / task: what to plan (:meth:`set_instruction`); ``None`` instruction: the
            task file's ``(:language ...)``.
        camera: zero-argument callable returning ``{camera name: (H, W, 3) uint8}`` for the
            current view (:meth:`set_camera`); ``None``: no images.

    Raises (from :meth:`plan`):
        VLMEndpointError, VLMReplyError, VLMPlanRefusedError; ValueError: no instruction.
    """

    def __init__(self, specs: Mapping[str, SkillSpec], base_url: str = "http://localhost:8000/v1",
                 model: str = "Qwen/Qwen2.5-VL-7B-Instruct", api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 2, backoff_s: float = 1.0,
                 max_repairs: int = 2, temperature: float = 0.0, max_tokens: int = 1024,
                 use_tools: bool = True, instruction: str | None = None,
                 task: BddlTask | str | os.PathLike | None = None,
                 camera: Callable[[], Mapping[str, np.ndarray]] | None = None) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or max_repairs < 0:
            raise ValueError(f"VLMPlanner: timeout_s must be > 0 and max_retries, backoff_s, "
                             f"max_repairs >= 0 (got {timeout_s}, {max_retries}, {backoff_s}, "
                             f"{max_repairs})")
        self.specs = dict(specs)
        self.base_url = str(base_url)
        self.model = str(model)
        self.api_key_env = str(api_key_env)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_repairs = int(max_repairs)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.use_tools = bool(use_tools)
        self.instruction = instruction
        self.task: BddlTask | None = None
        if task is not None:
            self.set_instruction(instruction, task)
        self.camera = camera
        self.transcript: list[dict[str, Any]] = []
        self.attempts: list[list[str]] = []
        self._client = None

    def set_instruction(self, instruction: str | None,
                        task: BddlTask | str | os.PathLike | None = None) -> None:
        """Plan ``instruction`` (``None``: the task file's own) in the scene of ``task``."""
        if task is not None:
            self.task = task if isinstance(task, BddlTask) else load_bddl(Path(task))
        self.instruction = instruction

    def set_camera(self, camera: Callable[[], Mapping[str, np.ndarray]] | None) -> None:
        """Attach the current-view callable (e.g. ``lambda: world.robot.observe().images``)."""
        self.camera = camera

    @property
    def client(self):
        """The ``openai.OpenAI`` client (built on first use; its own retries are off)."""
        if self._client is None:
            import openai

            key = os.environ.get(self.api_key_env) or "EMPTY"
            self._client = openai.OpenAI(base_url=self.base_url, api_key=key,
                                         timeout=self.timeout_s, max_retries=0)
        return self._client

    # ----------------------------------------------------------------- transport
    def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None):
        import openai

        retryable = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                     openai.InternalServerError)
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                kw: dict[str, Any] = dict(model=self.model, messages=messages,
                                          temperature=self.temperature,
                                          max_tokens=self.max_tokens)
                if tools:
                    kw.update(tools=tools, tool_choice="auto")
                resp = self.client.chat.completions.create(**kw)
            except retryable as e:
                last = e
                if attempt < self.max_retries:
                    time.sleep(self.backoff_s * (2 ** attempt))
                continue
            except openai.APIStatusError as e:
                raise VLMEndpointError(f"{self.base_url}: HTTP {e.status_code} from model "
                                       f"{self.model!r}: {str(e)[:300]}") from e
            except (openai.APIError, ValueError, TypeError, AttributeError) as e:
                # a body that is not the chat-completions JSON (the client's decoder raises)
                raise VLMReplyError(f"{self.base_url}: unreadable response from model "
                                    f"{self.model!r}: {type(e).__name__}: {str(e)[:300]}") from e
            choices = getattr(resp, "choices", None)
            if not choices:
                raise VLMReplyError(f"{self.base_url}: response without choices: "
                                    f"{str(resp)[:300]}")
            return choices[0].message
        kind = ("timed out" if isinstance(last, openai.APITimeoutError) else
                "unreachable" if isinstance(last, openai.APIConnectionError) else "failing")
        raise VLMEndpointError(
            f"VLM endpoint {self.base_url} {kind} after {self.max_retries + 1} attempt(s) "
            f"(timeout {self.timeout_s:g} s): {type(last).__name__}: {last}") from last

    # ----------------------------------------------------------------- planning
    def plan(self, problem: SymbolicProblem) -> Plan:
        """Ask the model for a plan, validate it, and send it back for repair when invalid.

        Returns:
            A valid :class:`Plan` (with expected states).

        Raises:
            ValueError: no instruction and no task. VLMEndpointError: transport failure after
                retries. VLMReplyError: replies never readable as skill calls.
                VLMPlanRefusedError: still invalid after ``max_repairs`` repairs.
        """
        instruction = self.instruction or (self.task.language if self.task else None)
        if not instruction:
            raise ValueError("VLMPlanner has no instruction: call set_instruction(text, task)")
        images = dict(self.camera()) if self.camera is not None else {}
        messages = build_messages(instruction, problem, self.specs, images)
        tools = skill_tools(self.specs, problem.entities) if self.use_tools else None
        self.transcript, self.attempts = messages, []
        last_issue = ""
        for round_ in range(self.max_repairs + 1):
            msg = self._complete(messages, tools)
            try:
                calls = parse_reply(msg)
            except VLMReplyError as e:
                last_issue = str(e)
                feedback = (f"Your reply could not be read as skill calls: {e}. Reply with the "
                            f"plan as tool calls or as JSON {{\"plan\": [...]}}.")
                messages = messages + [_assistant_echo(msg), {"role": "user",
                                                              "content": feedback}]
                continue
            self.attempts.append([str(c) for c in calls])
            issues = validate_plan(calls, problem, self.specs)
            if not issues:
                return validate_plan_strict(calls, problem, self.specs)
            last_issue = "; ".join(str(i) for i in issues)
            feedback = ("The plan " + "[" + ", ".join(str(c) for c in calls) + "] is invalid:\n"
                        + "\n".join(f"- {i}" for i in issues)
                        + "\nSend the whole corrected plan.")
            messages = messages + [_assistant_echo(msg), {"role": "user", "content": feedback}]
            if round_ == self.max_repairs:
                raise VLMPlanRefusedError(
                    f"VLM plan refused after {self.max_repairs} repair round(s); last plan "
                    f"{self.attempts[-1]}:\n" + "\n".join(f"  {i}" for i in issues),
                    issues, self.attempts)
        raise VLMReplyError(f"{self.base_url}: no readable plan after {self.max_repairs} repair "
                            f"round(s): {last_issue}")


def _assistant_echo(msg: Any) -> dict[str, Any]:
    """The assistant turn as plain text (tool calls spelled out), for the repair conversation."""
    get = (lambda k: msg.get(k)) if isinstance(msg, Mapping) else (lambda k: getattr(msg, k, None))
    parts = []
    for tc in get("tool_calls") or []:
        fn = tc.get("function") if isinstance(tc, Mapping) else getattr(tc, "function", None)
        name = fn.get("name") if isinstance(fn, Mapping) else getattr(fn, "name", None)
        args = fn.get("arguments") if isinstance(fn, Mapping) else getattr(fn, "arguments", None)
        parts.append(f"{name}({args})")
    content = get("content")
    text = content if isinstance(content, str) else ""
    return {"role": "assistant", "content": (text + "\n" + "\n".join(parts)).strip() or "(empty)"}

