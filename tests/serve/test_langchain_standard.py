"""LangChain's own standard integration suite for chat models (langchain-tests), run against a live
`xuetu serve`: through ChatOpenAI on /v1 and ChatOllama on /api on the embedded SmolLM2-135M (llama.cpp),
and through ChatOllama on that model with a LoRA tuned on tool-call data.

The suite's tests are LangChain's, unchanged: its own rule (test_no_overrides_DO_NOT_OVERRIDE) lets a class
only mark a standard test xfail, with a reason. Only the capability flags below are ours, and they say what
the server does. Off are image, audio, PDF and video inputs (xuetu's models read text) and the suite's
provider-specific extras xuetu does not claim (Anthropic-shaped inputs, VCR cassettes).

ChatOllama has tool calling but no tool choice: its bind_tools drops tool_choice (Ollama's API has none;
xuetu's tool_choice extension is not something the ollama client can send), so there the model must decide
to call a tool by itself, as it must in the suite's agent loop, which offers its tool without tool_choice.
The base 135M model does not, so those tests are xfail on it (CHOOSES). TestChatOllamaTuned runs the whole
suite, with no such mark, through the same server on the model that tests/conftest.py's tool_tuned fixture
fine-tunes (issue 24's acceptance allows exactly this). About 6 minutes on 2 cores, plus the fine-tune when
no other test made it.
"""

from __future__ import annotations

import os
import shutil

import pytest
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

from serve.conftest import KEY

pytestmark = pytest.mark.slow
# JSON mode constrains the answer to some JSON object, and it always parses; the suite then expects flat
# "setup"/"punchline" strings, and the 135M model writes a nested object instead (its own probabilities favour
# an object after "setup": 0.62 against 0.12 for a string). A model limit, left visible (issue 24).
SHAPE = pytest.mark.xfail(reason="JSON mode parses, but the 135M model nests the joke's fields; see issue 24",
                          strict=False)
BOTH_OUTPUTS = pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)  # the suite's own
MODEL = "smollm2:135m"
OTHER = "tiny:latest"  # a second model on the same server, for the suite's model-override tests
TIMEOUT = 300
CHOOSES = pytest.mark.xfail(reason="the base 135M model does not choose tools by itself; TestChatOllamaTuned "
                                   "runs this on a tool-tuned model", strict=False)


@pytest.fixture(scope="module")
def tuned(serve_home, tool_tuned) -> str:
    """The tool-tuned model, hard-linked into the running server's store (it reads the store per request)."""
    home, name, _ = tool_tuned
    folder = name.split(":")[0]
    if not (serve_home / "models" / folder).exists():
        shutil.copytree(home / "models" / folder, serve_home / "models" / folder, copy_function=os.link)
    return name


class _Live:
    """The server's address, set on the class by an autouse fixture before the suite's `model` fixture runs."""

    url = ""

    @pytest.fixture(autouse=True)
    def _live_server(self, request, server):
        request.cls.url = server.url

    @property
    def model_override_value(self) -> str:
        return OTHER

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @SHAPE
    def test_json_mode(self, model) -> None:
        super().test_json_mode(model)



class TestChatOpenAI(_Live, ChatModelIntegrationTests):

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict:
        return {"model": MODEL, "base_url": self.url + "/v1", "api_key": KEY, "temperature": 0,
                "timeout": TIMEOUT, "max_retries": 0, "stream_usage": True}

    @property
    def has_tool_choice(self) -> bool:
        return True

    # Tools offered without tool_choice ("auto"): the model has to decide to call one.
    @CHOOSES
    @BOTH_OUTPUTS
    def test_agent_loop(self, model) -> None:
        super().test_agent_loop(model)


class _Ollama(_Live):
    model_name = MODEL

    @property
    def chat_model_class(self) -> type[ChatOllama]:
        return ChatOllama

    @property
    def chat_model_params(self) -> dict:
        return {"model": self.model_name, "base_url": self.url, "temperature": 0,
                "client_kwargs": {"headers": {"Authorization": f"Bearer {KEY}"}, "timeout": TIMEOUT}}

    @property
    def has_tool_choice(self) -> bool:
        return False  # ChatOllama.bind_tools ignores tool_choice, and the ollama client cannot send it


class TestChatOllama(_Ollama, ChatModelIntegrationTests):

    # ChatOllama sends no tool_choice, so in each of these the model has to decide to call the tool.
    @CHOOSES
    @BOTH_OUTPUTS
    def test_tool_calling(self, model) -> None:
        super().test_tool_calling(model)

    @CHOOSES
    async def test_tool_calling_async(self, model) -> None:
        await super().test_tool_calling_async(model)

    @CHOOSES
    def test_tool_calling_with_no_arguments(self, model) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @CHOOSES
    def test_bind_runnables_as_tools(self, model) -> None:
        super().test_bind_runnables_as_tools(model)

    @CHOOSES
    def test_unicode_tool_call_integration(self, model) -> None:
        super().test_unicode_tool_call_integration(model)

    @CHOOSES
    @BOTH_OUTPUTS
    def test_agent_loop(self, model) -> None:
        super().test_agent_loop(model)


class TestChatOllamaTuned(_Ollama, ChatModelIntegrationTests):
    """The whole suite on the tool-tuned model, no test marked but JSON mode's shape."""

    @pytest.fixture(autouse=True)
    def _tuned_model(self, request, tuned):
        request.cls.model_name = tuned
