"""Tool calling, shared by serving, data, training and evaluation.

- spec: tool definitions and tool_choice from a request, checked (BadInput on anything wrong)
- dialects/: how each model family writes a call; parse and render
- prompt: messages and tools made ready for a chat template, or xuetu's fallback prompt
- constrain: the JSON schema a forced call is decoded under
- stream: an answer split into content and calls as it streams
"""

from xuetu.tools.calls import Parsed, ToolCall
from xuetu.tools.spec import Choice, Tool, parse_choice, parse_tools

__all__ = ["Choice", "Parsed", "Tool", "ToolCall", "parse_choice", "parse_tools"]
