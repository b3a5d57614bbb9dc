"""Playground tab: chat with a model, the reply streamed in as it is generated,
with a Stop button; JSON mode, tools the model may call (its calls shown
apart), and a reasoning model's thinking under a collapsed header. A quick
way to see that a model works."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController

MODEL = "playground.model"
SYSTEM = "playground.system"
MAX_TOKENS = "playground.max_tokens"
TEMPERATURE = "playground.temperature"
RAW_PROMPT = "playground.raw_prompt"
JSON_MODE = "playground.json_mode"
TOOLS = "playground.tools"
TRANSCRIPT = "playground.transcript"
INPUT = "playground.input"
SEND = "playground.send"
STOP = "playground.stop"
CLEAR = "playground.clear"
RESULT = "playground.result"

ROLE_COLOURS = {"user": theme.ACCENT, "assistant": theme.OK}


class PlaygroundPanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown_models = -1
        self._shown_chat = -1
        self._drawn_turns = 0
        # Whether the last turn was drawn with its reasoning (the header appears with the
        # first thought), and with how many tool calls.
        self._drawn_reasoning: tuple[bool, int] = (False, 0)
        self._scroll_down = False

    def build(self) -> None:
        with dpg.group(horizontal=True):
            dpg.add_text("Model")
            dpg.add_combo([], tag=MODEL, width=300)
            dpg.add_text("Max tokens")
            dpg.add_input_int(tag=MAX_TOKENS, default_value=256, min_value=1, min_clamped=True, width=120)
            dpg.add_text("Temperature")
            dpg.add_slider_float(tag=TEMPERATURE, default_value=0.7, min_value=0.0, max_value=2.0, width=140)
            dpg.add_checkbox(tag=RAW_PROMPT, label="Raw prompt")
            with dpg.tooltip(RAW_PROMPT):
                dpg.add_text("Send the text alone, without the chat template or the conversation:")
                dpg.add_text("base models, such as the default one, continue text rather than chat.")
            dpg.add_checkbox(tag=JSON_MODE, label="JSON mode")
            with dpg.tooltip(JSON_MODE):
                dpg.add_text("The answer is one JSON object (a grammar holds the model to it).")
        dpg.add_input_text(tag=SYSTEM, hint="system prompt (optional)", width=-1)
        with dpg.collapsing_header(label="Tools", default_open=False):
            dpg.add_input_text(
                tag=TOOLS,
                multiline=True,
                height=90,
                width=-1,
                hint='[{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}]',
            )
        with dpg.child_window(tag=TRANSCRIPT, height=-75, border=True):
            pass
        dpg.add_input_text(
            tag=INPUT, hint="Type a message and press Enter", width=-1, on_enter=True, callback=self._on_send
        )
        with dpg.group(horizontal=True):
            dpg.add_button(label="Send", tag=SEND, callback=self._on_send)
            dpg.add_button(label="Stop", tag=STOP, callback=lambda: self.controller.stop_chat())
            dpg.add_button(label="Clear", tag=CLEAR, callback=lambda: self.controller.clear_chat())
            dpg.add_text("", tag=RESULT, color=theme.MUTED)

    def _on_send(self, *args) -> None:
        temperature = dpg.get_value(TEMPERATURE)
        sent = self.controller.send_chat(
            dpg.get_value(MODEL) or "",
            dpg.get_value(INPUT) or "",
            system_prompt=dpg.get_value(SYSTEM) or "",
            max_tokens=dpg.get_value(MAX_TOKENS) or None,
            temperature=round(float(temperature), 2),
            raw_prompt=bool(dpg.get_value(RAW_PROMPT)),
            json_mode=bool(dpg.get_value(JSON_MODE)),
            tools_json=dpg.get_value(TOOLS) or "",
        )
        if sent:
            dpg.set_value(INPUT, "")

    def refresh(self) -> None:
        state = self.controller.state
        if state.models_version != self._shown_models:
            self._shown_models = state.models_version
            choices = state.chat_models()
            dpg.configure_item(MODEL, items=choices)
            if dpg.get_value(MODEL) not in choices:
                dpg.set_value(MODEL, choices[0] if choices else "")
        chat = state.chat
        if self._scroll_down:
            # The new height is known one frame after the text changed.
            dpg.set_y_scroll(TRANSCRIPT, dpg.get_y_scroll_max(TRANSCRIPT))
            self._scroll_down = False
        if chat.version == self._shown_chat:
            return
        self._shown_chat = chat.version
        last = chat.turns[-1] if chat.turns else None
        drawn = (bool(last.reasoning), len(last.tool_calls)) if last is not None else (False, 0)
        if len(chat.turns) != self._drawn_turns or drawn != self._drawn_reasoning:
            self._draw_turns()
        elif last is not None:
            index = len(chat.turns) - 1
            dpg.set_value(f"playground.turn.{index}", _shown(last, chat.streaming))
            if last.reasoning:
                dpg.set_value(f"playground.reasoning.{index}", last.reasoning)
                dpg.configure_item(f"playground.thinking.{index}", label=_thinking_label(last, chat.streaming))
        dpg.set_value(RESULT, chat.last_result)
        dpg.configure_item(SEND, enabled=not chat.streaming)
        dpg.configure_item(STOP, enabled=chat.streaming)
        self._scroll_down = True

    def _draw_turns(self) -> None:
        chat = self.controller.state.chat
        dpg.delete_item(TRANSCRIPT, children_only=True)
        for index, turn in enumerate(chat.turns):
            dpg.add_text("You" if turn.role == "user" else "Model", parent=TRANSCRIPT, color=ROLE_COLOURS[turn.role])
            if turn.reasoning:
                streaming = chat.streaming and index == len(chat.turns) - 1
                with dpg.collapsing_header(
                    label=_thinking_label(turn, streaming),
                    parent=TRANSCRIPT,
                    tag=f"playground.thinking.{index}",
                    default_open=False,
                    indent=12,
                ):
                    dpg.add_text(turn.reasoning, tag=f"playground.reasoning.{index}", wrap=0, color=theme.MUTED)
            dpg.add_text(
                _shown(turn, chat.streaming and index == len(chat.turns) - 1),
                parent=TRANSCRIPT,
                tag=f"playground.turn.{index}",
                wrap=0,
                indent=12,
                show=bool(turn.content or not turn.tool_calls),
            )
            for number, (name, arguments) in enumerate(turn.tool_calls):
                dpg.add_text(
                    f"calls {name}({arguments})",
                    parent=TRANSCRIPT,
                    tag=f"playground.tool_call.{index}.{number}",
                    wrap=0,
                    indent=12,
                    color=theme.WARNING,
                )
            dpg.add_spacer(parent=TRANSCRIPT, height=4)
        self._drawn_turns = len(chat.turns)
        last = chat.turns[-1] if chat.turns else None
        self._drawn_reasoning = (bool(last.reasoning), len(last.tool_calls)) if last is not None else (False, 0)


def _shown(turn, streaming: bool) -> str:
    if turn.content or streaming:
        return turn.content or "..."
    return "(no answer: max tokens reached while thinking)" if turn.reasoning else "..."


def _thinking_label(turn, streaming: bool) -> str:
    """The header over a turn's reasoning: its token count once known."""
    if streaming:
        return "Thinking..."
    return f"Thought for {turn.reasoning_tokens} tokens" if turn.reasoning_tokens else "Thoughts"
