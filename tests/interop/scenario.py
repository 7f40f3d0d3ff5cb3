"""Drives `mijia mcp` with the official Python MCP client, in one protocol era.

Usage: scenario.py MODE   (MODE: legacy -> 2025-11-25 handshake, auto -> 2026-07-28)

Environment (set by tests/mcp.rs):
  MIJIA_BIN    the mijia binary
  MIJIA_HOME   a prepared home: registry with the fake fleet, policy, 2 s confirm timeout
  MCP_PREFIX   device-name prefix of this era's devices ("L" or "M")
  MCP_URL      optional: connect over Streamable HTTP to this URL instead of stdio
  MCP_TOKEN    the bearer token for MCP_URL

Prints one JSON object with every step's result on stdout; the Rust test
checks it, the devices' state and the audit log. Exits non-zero on any
unexpected client-side failure.
"""

import asyncio
import json
import os
import subprocess
import sys

import httpx2
import mcp
from mcp import Client, StdioServerParameters, types
from mcp.client.streamable_http import streamable_http_client

MODE = sys.argv[1]
BIN = os.environ["MIJIA_BIN"]
HOME = os.environ["MIJIA_HOME"]
P = os.environ["MCP_PREFIX"]
URL = os.environ.get("MCP_URL")
TOKEN = os.environ.get("MCP_TOKEN", "")
CONFIRM_TIMEOUT = 2.0


class User:
    """The person behind the client's confirmation form."""

    def __init__(self):
        self.answer = "accept"
        self.asked = []

    async def elicit(self, ctx, params: types.ElicitRequestParams):
        self.asked.append(params.message)
        schema = params.requested_schema
        assert "confirm" in schema["properties"], schema
        if self.answer == "slow":
            await asyncio.sleep(CONFIRM_TIMEOUT + 1.5)
            return types.ElicitResult(action="accept", content={"confirm": True})
        if self.answer == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        if self.answer == "decline":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="cancel")


def server():
    if URL:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        return streamable_http_client(URL, http_client=http)
    return StdioServerParameters(
        command=BIN,
        args=["mcp"],
        env={"MIJIA_HOME": HOME, "PATH": os.environ.get("PATH", "")},
    )


def result(r, user=None, before=0):
    text = "\n".join(c.text for c in r.content if getattr(c, "type", "") == "text")
    out = {"is_error": bool(r.is_error), "text": text, "structured": r.structured_content}
    if user is not None:
        out["asked"] = len(user.asked) - before
    return out


async def call(client, user, name, args, answer="accept"):
    before = len(user.asked) if user else 0
    if user:
        user.answer = answer
    r = await client.call_tool(name, args)
    return result(r, user, before)


def target(device, **extra):
    args = {"device": device, "room": None, "approval_id": None}
    args.update(extra)
    return args


async def main():
    out = {"mode": MODE}
    user = User()
    async with Client(server(), mode=MODE, elicitation_callback=user.elicit) as client:
        out["protocol_version"] = client.protocol_version
        tools = await client.list_tools()
        out["tools"] = {
            t.name: {
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None,
                "has_output_schema": t.output_schema is not None,
                "input_schema": t.input_schema,
            }
            for t in tools.tools
        }
        res = await client.list_resources()
        out["resources"] = [str(r.uri) for r in res.resources]
        out["overview"] = await call(client, None, "home_overview", {"room": None})
        out["state"] = await call(client, None, "get_device_state", {"device": f"{P} lamp", "room": None, "properties": None})
        out["describe"] = await call(client, None, "describe_device", {"device": f"{P} heater accept", "room": None})
        # Control tier: the first use asks for a grant; the second does not.
        out["light_first"] = await call(client, user, "set_light", target(f"{P} lamp", brightness=40, color_temperature=None, color=None))
        out["light_again"] = await call(client, user, "set_light", target(f"{P} lamp", brightness=60, color_temperature=None, color=None))
        out["light_bad_value"] = await call(client, user, "set_light", target(f"{P} lamp", brightness=1000, color_temperature=None, color=None))
        # Sensitive: asked every time.
        out["heater_accept"] = await call(client, user, "turn_on", target(f"{P} heater accept"), "accept")
        out["heater_decline"] = await call(client, user, "turn_on", target(f"{P} heater decline"), "decline")
        out["heater_cancel"] = await call(client, user, "turn_on", target(f"{P} heater decline"), "cancel")
        out["heater_timeout"] = await call(client, user, "turn_on", target(f"{P} heater slow"), "slow")
        out["unexposed"] = await call(client, user, "turn_on", target(f"{P} hidden heater"))
        out["ambiguous"] = await call(client, None, "get_device_state", {"device": f"{P} heater", "room": None, "properties": None})
        out["forbidden"] = await call(client, None, "make_payment", {"amount": 10})
        out["smuggled_confirm"] = await call(client, user, "turn_on", {"device": f"{P} heater decline", "room": None, "approval_id": None, "confirm": True})
        if MODE != "legacy":
            # Drive the input_required round by hand: tampered and replayed states.
            args = target(f"{P} heater replay")
            first = await client.session.call_tool("turn_on", args, allow_input_required=True)
            out["mrtr_first"] = {"type": type(first).__name__, "keys": sorted((first.input_requests or {}).keys()) if isinstance(first, types.InputRequiredResult) else None}
            yes = {"confirm": {"action": "accept", "content": {"confirm": True}}}
            state = first.request_state
            tampered = await client.session.call_tool("turn_on", args, input_responses=yes, request_state=state[:-2] + ("AA" if not state.endswith("AA") else "BB"), allow_input_required=True)
            out["mrtr_tampered"] = result(tampered)
            other = await client.session.call_tool("turn_on", target(f"{P} heater accept"), input_responses=yes, request_state=state, allow_input_required=True)
            out["mrtr_other_args"] = result(other)
            ok = await client.session.call_tool("turn_on", args, input_responses=yes, request_state=state, allow_input_required=True)
            out["mrtr_ok"] = result(ok)
            replay = await client.session.call_tool("turn_on", args, input_responses=yes, request_state=state, allow_input_required=True)
            out["mrtr_replay"] = result(replay)

    # A client that cannot show forms: out-of-band approval.
    async with Client(server(), mode=MODE) as plain:
        args = target(f"{P} heater approve")
        pending = result(await plain.call_tool("turn_on", args))
        out["approval_pending"] = pending
        approval_id = (pending["structured"] or {}).get("approval_id")
        retry_early = dict(args, approval_id=approval_id)
        out["approval_early"] = result(await plain.call_tool("turn_on", retry_early))
        run = subprocess.run([BIN, "approve", approval_id], env={"MIJIA_HOME": HOME, "PATH": os.environ.get("PATH", "")}, capture_output=True, text=True)
        out["approve_cli"] = {"code": run.returncode, "stdout": run.stdout, "stderr": run.stderr}
        out["approval_wrong_args"] = result(await plain.call_tool("turn_on", dict(target(f"{P} heater decline"), approval_id=approval_id)))
        out["approval_retry"] = result(await plain.call_tool("turn_on", retry_early))
        out["approval_reuse"] = result(await plain.call_tool("turn_on", retry_early))
    out["asked_total"] = len(user.asked)
    out["asked_messages"] = user.asked
    print(json.dumps(out))


asyncio.run(main())
