"""The official MCP Python SDK's stdio client, launching an MCP server command (`mcpgen bridge`).

Usage: mcp_stdio_client.py TOOL ARGS_JSON COMMAND [ARG...]. Starts COMMAND as a stdio server
(the environment passed on whole), initializes, lists the tools, calls TOOL with ARGS_JSON, and
prints one JSON object with what it saw: the tools, the call's result, the log messages the
server sent during the call, and how often the server asked for the client's roots. Any failure
is an exception (non-zero exit, traceback on stderr); the server's stderr goes to ours.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


async def main(tool: str, args: str, command: str, argv: list) -> dict:
    logs = []
    roots_asked = 0
    list_changed = asyncio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(message.root, types.ToolListChangedNotification):
            list_changed.set()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def list_roots(context) -> types.ListRootsResult:
        nonlocal roots_asked
        roots_asked += 1
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])

    server = StdioServerParameters(command=command, args=argv, env=dict(os.environ))
    async with stdio_client(server, errlog=sys.stderr) as (read, write):
        async with ClientSession(
            read, write, logging_callback=on_log, list_roots_callback=list_roots, message_handler=on_message
        ) as session:
            init = await session.initialize()
            listed = await session.list_tools()
            result = await session.call_tool(tool, json.loads(args))
            if tool == "announce":
                # Sent outside the call, on the GET stream: it may come after the result.
                await asyncio.wait_for(list_changed.wait(), 20)
            return {
                "protocol_version": str(init.protocolVersion),
                "server_name": init.serverInfo.name,
                "tools": [t.name for t in listed.tools],
                "call": {
                    "is_error": result.isError,
                    "structured": result.structuredContent,
                    "text": [block.text for block in result.content if block.type == "text"],
                },
                "logs": logs,
                "roots_asked": roots_asked,
                "list_changed": list_changed.is_set(),
            }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))))
