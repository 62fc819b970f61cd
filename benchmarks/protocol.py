"""A Streamlit session without a browser: Streamlit's own websocket protocol (protobuf BackMsg / ForwardMsg), so
that a 2-core machine can play a class of 30 against the real server, where 30 browsers would only measure each
other. It asks for what a browser asks for (a run with a query string, widget values, a page) and reads what comes
back (elements, exceptions, the end of the run)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState


@dataclasses.dataclass
class Run:
    """What one script run sent, and when."""

    elements: list = dataclasses.field(default_factory=list)  # (seconds since the request, Element)
    fragments: dict = dataclasses.field(default_factory=dict)  # widget id -> the fragment it is drawn in
    seconds: float = 0.0  # to the end of the run

    def first(self, kind: str, where=lambda element: True) -> tuple[float, object] | None:
        return next(((at, e) for at, e in self.elements if e.WhichOneof("type") == kind and where(e)), None)

    def exceptions(self) -> list[str]:
        return [e.exception.message for _, e in self.elements if e.WhichOneof("type") == "exception"]


class Session:
    def __init__(self, url: str) -> None:
        self.stream = url.replace("http", "ws", 1) + "/_stcore/stream"
        self.widgets: dict[str, WidgetState] = {}  # the values this session has set, sent with every run
        self.pages: dict[str, str] = {}  # url path -> page script hash
        self.page = ""

    async def __aenter__(self) -> Session:
        self.socket = await websockets.connect(self.stream, subprotocols=["streamlit"], max_size=None,
                                               open_timeout=120, ping_interval=None)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.socket.close()

    async def run(self, query: str = "", page: str | None = None, fragment: str = "", timeout: float = 600) -> Run:
        """One script run, as a browser asks for it: the query string, this session's widget values, a page (or
        only a fragment of it, as a widget inside an `st.fragment` asks)."""
        if page is not None:
            self.page = self.pages[page]
        message = BackMsg()
        message.rerun_script.query_string = query
        message.rerun_script.page_script_hash = self.page
        message.rerun_script.widget_states.widgets.extend(self.widgets.values())
        message.rerun_script.fragment_id = fragment
        start = time.perf_counter()
        await self.socket.send(message.SerializeToString())
        run = Run()
        while True:
            reply = ForwardMsg()
            reply.ParseFromString(await asyncio.wait_for(self.socket.recv(), timeout))
            kind = reply.WhichOneof("type")
            if kind == "new_session":
                self.pages = {p.url_pathname: p.page_script_hash for p in reply.new_session.app_pages}
            elif kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in reply.navigation.app_pages}
            elif kind == "delta" and reply.delta.WhichOneof("type") == "new_element":
                element = reply.delta.new_element
                run.elements.append((time.perf_counter() - start, element))
                if reply.delta.fragment_id and element.WhichOneof("type") == "bidi_component":
                    run.fragments[element.bidi_component.id] = reply.delta.fragment_id
            elif kind == "script_finished":
                run.seconds = time.perf_counter() - start
                self.remember(run)
                return run

    def remember(self, run: Run) -> None:
        """The values the server set on widgets (from session state, e.g. a link's), which a browser shows and sends
        back with its next run; without them a widget falls back to its default."""
        for _, element in run.elements:
            kind = element.WhichOneof("type")
            widget = getattr(element, kind)
            if kind not in ("multiselect", "radio", "selectbox", "number_input") or not widget.set_value:
                continue
            state = WidgetState(id=widget.id)
            if kind == "multiselect":
                state.string_array_value.data.extend(widget.raw_values)
            elif kind == "number_input":
                if widget.format == "%d":
                    state.int_value = int(widget.value)
                else:
                    state.double_value = widget.value
            else:
                state.string_value = widget.raw_value
            self.widgets[widget.id] = state

    def set_number(self, element, value: int) -> None:
        self.widgets[element.number_input.id] = WidgetState(id=element.number_input.id, int_value=value)

    def set_component_state(self, element, state: dict) -> None:
        widget = element.bidi_component.id
        self.widgets[widget] = WidgetState(id=widget, json_value=json.dumps(state))
