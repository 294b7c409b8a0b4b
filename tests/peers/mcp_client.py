"""The official MCP Python SDK's Streamable HTTP client against a running `mcpgen serve`.

Usage: mcp_client.py URL HEADER TOKEN. Connects with HEADER: TOKEN on every request,
initializes, lists the tools, calls getOrders with no arguments, and prints one JSON object
with what it saw. Any failure is an exception (non-zero exit, traceback on stderr). For an
https URL, SSL_CERT_FILE names the CA bundle to trust (as httpx itself reads it when it trusts
the environment, which this script does not, for the proxy's sake).
"""

import asyncio
import json
import os
import ssl
import sys

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, header: str, token: str) -> dict:
    # trust_env=False: loopback never goes through a proxy the environment names.
    ca_file = os.environ.get("SSL_CERT_FILE")
    verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
    async with httpx.AsyncClient(headers={header: token}, timeout=30, trust_env=False, verify=verify) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, session_id):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                listed = await session.list_tools()
                result = await session.call_tool("getOrders", {})
                return {
                    "protocol_version": str(init.protocolVersion),
                    "server_name": init.serverInfo.name,
                    "has_session": bool(session_id()),
                    "tools": [tool.name for tool in listed.tools],
                    "schemas": {tool.name: tool.inputSchema for tool in listed.tools},
                    "call": {
                        "is_error": result.isError,
                        "structured": result.structuredContent,
                        "text": [block.text for block in result.content if block.type == "text"],
                    },
                }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
