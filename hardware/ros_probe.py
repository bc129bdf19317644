"""``RosProbe``: a small rclpy client for tests, benchmarks and scripts talking to the bridge.

One private ``rclpy.Context`` (so it never touches the default context a node under test may use),
one node, one executor; :meth:`RosProbe.spin_until` drives it from the caller's thread. It
collects messages per topic, publishes, and calls ``std_srvs/Trigger`` / ``SetBool`` services.
``with RosProbe() as p:`` destroys the node and shuts the context down on exit.

Topics used by the bridge (defaults): ``/robot_skills/task`` (``std_msgs/String`` JSON in),
``/robot_skills/result`` (transient-local, JSON out), ``/robot_skills/progress``,
``/robot_skills/estop`` (``std_msgs/Bool``), ``/sim_twin/predicates``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

LATCHED_DEPTH = 10


class RosProbe:
    """A node in its own context, spun on demand.

    Args:
        name: node name.

    Raises:
        ImportError: without rclpy.
    """

    def __init__(self, name: str = "robot_skills_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.messages: dict[str, list[Any]] = {}
        self._pubs: dict[str, Any] = {}

    # ------------------------------------------------------------------ spinning
    def spin_until(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Spin until ``cond()`` is true or ``timeout`` s pass; returns ``cond()``."""
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))
        return bool(cond())

    def spin_for(self, seconds: float) -> None:
        """Spin for ``seconds``."""
        self.spin_until(lambda: False, seconds)

    # ------------------------------------------------------------------ topics
    def subscribe(self, topic: str, msg_type: Any, *, latched: bool = False,
                  convert: Callable[[Any], Any] | None = None, depth: int = 100) -> list[Any]:
        """Collect messages of ``topic`` (converted by ``convert``) into the returned list
        (also :attr:`messages` ``[topic]``). ``latched``: transient-local durability."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        out = self.messages.setdefault(topic, [])
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                         else DurabilityPolicy.VOLATILE)
        self.node.create_subscription(msg_type, topic,
                                      lambda m: out.append(convert(m) if convert else m), qos)
        return out

    def subscribe_json(self, topic: str, *, latched: bool = False) -> list[dict]:
        """Collect ``std_msgs/String`` JSON messages of ``topic`` as dicts."""
        from std_msgs.msg import String

        return self.subscribe(topic, String, latched=latched, convert=lambda m: json.loads(m.data))

    def publisher(self, topic: str, msg_type: Any, *, latched: bool = False,
                  match_timeout: float = 5.0) -> Any:
        """A (cached) publisher of ``topic``. A new one waits up to ``match_timeout`` s for a
        subscription to match it, so the first message is not lost to discovery."""
        if topic not in self._pubs:
            from rclpy.qos import DurabilityPolicy, QoSProfile

            qos = QoSProfile(depth=LATCHED_DEPTH, durability=DurabilityPolicy.TRANSIENT_LOCAL
                             if latched else DurabilityPolicy.VOLATILE)
            pub = self.node.create_publisher(msg_type, topic, qos)
            self._pubs[topic] = pub
            if match_timeout > 0:
                self.spin_until(lambda: pub.get_subscription_count() > 0, match_timeout)
        return self._pubs[topic]

    def wait_for_subscriber(self, topic: str, timeout: float) -> bool:
        """Wait until something subscribes to ``topic`` (discovery done)."""
        return self.spin_until(lambda: self.node.count_subscribers(topic) > 0, timeout)

    def send_json(self, topic: str, obj: Any, *, raw: str | None = None) -> None:
        """Publish ``obj`` as JSON (or the text ``raw`` as is) on a ``std_msgs/String`` topic."""
        from std_msgs.msg import String

        self.publisher(topic, String).publish(String(data=raw if raw is not None
                                                     else json.dumps(obj)))

    def estop(self, engaged: bool = True, topic: str = "/robot_skills/estop") -> None:
        """Publish a ``std_msgs/Bool`` e-stop message."""
        from std_msgs.msg import Bool

        self.publisher(topic, Bool).publish(Bool(data=bool(engaged)))

    # ------------------------------------------------------------------ services
    def call(self, service: str, srv_type: Any = None, request: Any = None,
             timeout: float = 10.0) -> Any:
        """Call a service (default ``std_srvs/Trigger``); returns the response.

        Raises:
            TimeoutError: the service is not there, or does not answer, within ``timeout``.
        """
        if srv_type is None:
            from std_srvs.srv import Trigger as srv_type  # noqa: N813
        cli = self.node.create_client(srv_type, service)
        try:
            if not cli.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {service} not available within {timeout} s")
            fut = cli.call_async(request if request is not None else srv_type.Request())
            if not self.spin_until(fut.done, timeout):
                raise TimeoutError(f"service {service} did not answer within {timeout} s")
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def set_bool(self, service: str, value: bool, timeout: float = 10.0) -> Any:
        """Call a ``std_srvs/SetBool`` service."""
        from std_srvs.srv import SetBool

        return self.call(service, SetBool, SetBool.Request(data=bool(value)), timeout)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Destroy the node and shut the context down. Idempotent."""
        if self.node is not None:
            self.executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
            self.node = None
        if self.context.ok():
            self._rclpy.shutdown(context=self.context)

    def __enter__(self) -> RosProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
