"""The desktop window's state logic, without a display: what the tables, the
plots and the playground show for given gRPC replies and events; settings
validation and saving; the config file's "settings" as a settings source.
The playground's conversation, progress bars and frame pacing are in
test_desktop_session.py."""


from hearth.desktop import messages as msg
from hearth.desktop.request_log import RequestLog, request_row
from hearth.desktop.state import (
    adapter_health_text,
    model_row,
    server_summary,
)
from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import human_bytes, human_count, human_duration

GEMMA = pb.Model(
    id="gemma-3-270m-q4_k_m",
    path="/models/gemma-3-270m-q4_k_m.gguf",
    file_size_bytes=253_114_624,
    architecture="gemma3",
    parameter_count=268_098_176,
    quantization="Q4_K_M",
    trained_context_length=32768,
    context_window=8192,
    has_chat_template=False,
    chat_template_source="builtin:gemma",
    state=pb.MODEL_STATE_UNLOADED,
)
QWEN = pb.Model(
    id="qwen",
    file_size_bytes=1_000_000_000,
    architecture="qwen2",
    parameter_count=1_540_000_000,
    quantization="Q8_0",
    trained_context_length=8192,
    context_window=8192,
    has_chat_template=True,
    chat_template_source="gguf",
    state=pb.MODEL_STATE_READY,
    memory_bytes=1_100_000_000,
)
BROKEN = pb.Model(id="broken", file_size_bytes=30, state=pb.MODEL_STATE_INVALID, state_reason="not a GGUF file")


def finished(
    model="gemma-3-270m-q4_k_m",
    *,
    at=1000.0,
    outcome=pb.REQUEST_OUTCOME_COMPLETED,
    tps=50.0,
    ttft=0.1,
    error="",
    request_id="r1",
    finish=pb.FINISH_REASON_STOP,
) -> pb.WatchEventsResponse:
    return pb.WatchEventsResponse(
        timestamp=at,
        request_finished=pb.RequestFinished(
            request_id=request_id,
            model=model,
            prompt_tokens=12,
            completion_tokens=34,
            time_to_first_token_seconds=ttft,
            duration_seconds=0.8,
            tokens_per_second=tps,
            outcome=outcome,
            finish_reason=finish if outcome == pb.REQUEST_OUTCOME_COMPLETED else pb.FINISH_REASON_UNSPECIFIED,
            error=error,
        ),
    )


def state_changed(model: str, state: int, reason: str = "", at: float = 1000.0) -> pb.WatchEventsResponse:
    return pb.WatchEventsResponse(
        timestamp=at, model_state_changed=pb.ModelStateChanged(model=model, state=state, reason=reason)
    )


# ---------------------------------------------------------------- formatting


def test_sizes_counts_and_durations_read_as_people_write_them():
    assert human_bytes(512) == "512 B"
    assert human_bytes(253_114_624) == "253.1 MB"
    assert human_bytes(4_200_000_000) == "4.2 GB"
    assert human_count(268_098_176) == "268M"
    assert human_count(1_540_000_000) == "1.5B"
    assert human_duration(5) == "5s"
    assert human_duration(125) == "2m 05s"
    assert human_duration(3723) == "1h 02m 03s"


# ---------------------------------------------------------------- models table


def test_a_model_row_shows_every_column():
    row = model_row(GEMMA)
    assert row.id == "gemma-3-270m-q4_k_m"
    assert (row.architecture, row.parameters, row.quantization) == ("gemma3", "268M", "Q4_K_M")
    assert row.file_size == "253.1 MB"
    assert row.context == "8192 (trained 32768)"
    assert row.chat_template == "no, uses builtin:gemma"
    assert row.state_text == "unloaded"
    assert row.can_load and not row.can_unload


def test_ready_and_invalid_models_offer_the_right_action():
    ready = model_row(QWEN)
    assert ready.chat_template == "yes (in file)"
    assert ready.context == "8192"
    assert ready.can_unload and not ready.can_load
    assert ready.memory == "1.1 GB"
    broken = model_row(BROKEN)
    assert broken.state_text == "invalid: not a GGUF file"
    assert not broken.can_load and not broken.can_unload and not broken.usable
    assert broken.architecture == "-" and broken.parameters == "-"


def test_the_table_follows_listings_and_state_events(state):
    state.apply(msg.ModelsListed((GEMMA, QWEN, BROKEN)))
    assert [row.id for row in state.model_rows()] == ["gemma-3-270m-q4_k_m", "qwen", "broken"]
    version = state.models_version

    # An event changes the row at once, before the next listing.
    state.apply(msg.EngineEvent(state_changed(GEMMA.id, pb.MODEL_STATE_LOADING)))
    assert state.models_version > version
    assert state.model_rows()[0].state == "loading"
    state.apply(msg.EngineEvent(state_changed(GEMMA.id, pb.MODEL_STATE_FAILED, "out of memory")))
    assert state.model_rows()[0].state_text == "failed: out of memory"
    assert state.model_rows()[0].can_load  # a failed load may be retried

    # The next listing is the truth again.
    ready = pb.Model()
    ready.CopyFrom(GEMMA)
    ready.state = pb.MODEL_STATE_READY
    state.apply(msg.ModelsListed((ready, QWEN, BROKEN)))
    assert state.model_rows()[0].state_text == "ready"


def test_an_unchanged_listing_does_not_redraw_the_table(state):
    state.apply(msg.ModelsListed((GEMMA, QWEN)))
    version = state.models_version
    state.apply(msg.ModelsListed((GEMMA, QWEN)))
    assert state.models_version == version
    state.apply(msg.ModelsListed((GEMMA,)))
    assert state.models_version > version


def test_an_empty_folder_is_told_apart_from_no_answer_yet(state):
    version = state.models_version
    assert not state.models_listed
    state.apply(msg.ModelsListed(()))
    assert state.models_listed and state.models_version > version
    assert state.model_rows() == []


def test_events_about_unknown_models_change_nothing(state):
    state.apply(msg.ModelsListed((GEMMA,)))
    version = state.models_version
    state.apply(msg.EngineEvent(state_changed("elsewhere", pb.MODEL_STATE_READY)))
    assert state.models_version == version


def test_the_playground_offers_usable_models_ready_first(state):
    state.apply(msg.ModelsListed((GEMMA, QWEN, BROKEN)))
    assert state.chat_models() == ["qwen", "gemma-3-270m-q4_k_m"]


# ---------------------------------------------------------------- server


def status(**overrides) -> pb.GetStatusResponse:
    values = dict(
        backend=pb.BACKEND_CUDA,
        gpu_offload=True,
        engine_version="0.1.0",
        llama_cpp_python_version="0.3.36",
        loaded_models=[pb.LoadedModel(id="qwen", memory_bytes=1_100_000_000, active_requests=2, idle_seconds=0)],
        process_memory_bytes=1_500_000_000,
        system_memory_total_bytes=16_000_000_000,
        system_memory_available_bytes=9_000_000_000,
        uptime_seconds=3723,
        models_dir="/models",
        keep_alive_seconds=300,
    )
    values.update(overrides)
    return pb.GetStatusResponse(**values)


def test_the_server_summary_names_backend_offload_uptime_and_memory():
    summary = server_summary(status())
    assert summary.backend == "CUDA"
    assert summary.gpu_offload.startswith("on")
    assert summary.uptime == "1h 02m 03s"
    assert summary.engine_memory == "1.5 GB"
    assert summary.system_memory == "9.0 GB free of 16.0 GB"
    assert summary.keep_alive == "300 s"
    assert [(m.id, m.memory, m.active_requests) for m in summary.loaded] == [("qwen", "1.1 GB", 2)]
    assert server_summary(status(backend=pb.BACKEND_METAL)).backend == "Metal"
    cpu = server_summary(status(backend=pb.BACKEND_CPU, gpu_offload=False))
    assert (cpu.backend, cpu.gpu_offload) == ("CPU", "off")


def test_engine_reachability_follows_polls(state):
    assert state.engine_reachable is None
    state.apply(msg.EngineUnavailable("unavailable: connection refused", nothing_listening=True))
    assert state.engine_reachable is False and state.engine_nothing_listening
    state.apply(msg.StatusReceived(status()))
    assert state.engine_reachable is True and state.server.backend == "CUDA"
    assert state.models_dir == "/models"


def test_adapter_health_says_what_answers():
    assert adapter_health_text(None) == ("checking...", False)
    assert adapter_health_text(msg.AdapterHealth("http://h:1", 200)) == ("ok at http://h:1", True)
    text, healthy = adapter_health_text(msg.AdapterHealth("http://h:1", 503))
    assert "503" in text and not healthy
    text, healthy = adapter_health_text(msg.AdapterHealth("http://h:1", None, "ConnectError"))
    assert text == "not answering at http://h:1" and not healthy


# ---------------------------------------------------------------- request log


def test_a_finished_request_becomes_a_log_row():
    row = request_row(finished(tps=52.34))
    assert (row.model, row.prompt_tokens, row.completion_tokens) == ("gemma-3-270m-q4_k_m", 12, 34)
    assert row.duration == "0.80 s"
    assert row.speed == "52.3"
    assert row.outcome_text == "completed (stop)"
    assert not row.is_error
    assert request_row(state_changed("m", pb.MODEL_STATE_READY)) is None


def test_failures_stand_out_with_their_error():
    row = request_row(finished(outcome=pb.REQUEST_OUTCOME_FAILED, tps=0, error="context length exceeded"))
    assert row.is_error
    assert row.outcome_text == "failed (context length exceeded)"
    assert row.speed == "-"


def test_the_log_filters_by_text_and_outcome_newest_first():
    log = RequestLog()
    log.add(request_row(finished("gemma", at=1, request_id="a")))
    log.add(request_row(finished("qwen", at=2, request_id="b", outcome=pb.REQUEST_OUTCOME_CANCELLED)))
    log.add(request_row(finished("qwen", at=3, request_id="c", outcome=pb.REQUEST_OUTCOME_FAILED, error="boom")))
    assert [row.request_id for row in log.filtered()] == ["c", "b", "a"]
    assert [row.request_id for row in log.filtered("QWEN")] == ["c", "b"]
    assert [row.request_id for row in log.filtered(outcome="Failed")] == ["c"]
    assert [row.request_id for row in log.filtered("boom")] == ["c"]
    assert [row.request_id for row in log.filtered("gemma", "Cancelled")] == []
    assert [row.request_id for row in log.filtered(limit=1)] == ["c"]
    version = log.version
    log.clear()
    assert log.version > version and log.filtered() == []


def test_the_log_keeps_a_bounded_history():
    log = RequestLog(limit=3)
    for i in range(5):
        log.add(request_row(finished(request_id=str(i))))
    assert [row.request_id for row in log.filtered()] == ["4", "3", "2"]


# ---------------------------------------------------------------- performance plots


def test_plots_get_a_speed_point_per_completed_request_and_memory_per_poll(state, clock):
    state.apply(msg.EngineEvent(finished(at=1000.0, tps=40.0)))
    state.apply(msg.EngineEvent(finished(at=1005.0, outcome=pb.REQUEST_OUTCOME_CANCELLED, tps=0)))
    state.apply(msg.EngineEvent(finished(at=1010.0, tps=60.0)))
    xs, ys = state.performance.tokens_per_second.values()
    assert xs == [10.0, 20.0]  # seconds since the window opened (at 990)
    assert ys == [40.0, 60.0]
    assert len(state.requests.rows) == 3  # the log has them all

    clock.now = 1001.0
    state.apply(msg.StatusReceived(status()))
    clock.now = 1002.0
    state.apply(msg.StatusReceived(status(loaded_models=[], process_memory_bytes=500_000_000)))
    xs, engine = state.performance.engine_memory_mb.values()
    assert xs == [11.0, 12.0]
    assert engine == [1500.0, 500.0]
    assert state.performance.models_memory_mb.values()[1] == [1100.0, 0.0]


def test_plots_get_a_first_token_point_per_completed_request(state):
    state.apply(msg.EngineEvent(finished(at=1000.0, ttft=0.25)))
    state.apply(msg.EngineEvent(finished(at=1005.0, outcome=pb.REQUEST_OUTCOME_CANCELLED, tps=0, ttft=0.3)))
    state.apply(msg.EngineEvent(finished(at=1006.0, outcome=pb.REQUEST_OUTCOME_FAILED, tps=0, ttft=0, error="boom")))
    state.apply(msg.EngineEvent(finished(at=1010.0, ttft=1.5)))
    # A request that ended before its first token (none generated) has no point.
    state.apply(msg.EngineEvent(finished(at=1012.0, tps=0, ttft=0)))
    xs, ys = state.performance.time_to_first_token.values()
    assert xs == [10.0, 20.0]  # seconds since the window opened (at 990)
    assert ys == [0.25, 1.5]
    assert len(state.requests.rows) == 5


def test_a_request_with_a_first_token_but_no_speed_still_redraws_the_plots(state):
    version = state.performance.version
    state.apply(msg.EngineEvent(finished(at=1000.0, tps=0, ttft=0.2)))
    assert len(state.performance.tokens_per_second) == 0
    assert state.performance.time_to_first_token.values() == ([10.0], [0.2])
    assert state.performance.version > version


def test_the_queue_plot_sums_waiting_requests_and_busy_slots_over_the_models_per_poll(state, clock):
    version = state.performance.version
    clock.now = 1001.0
    state.apply(msg.StatusReceived(status()))  # a model with no slot numbers: nothing waits
    clock.now = 1002.0
    state.apply(
        msg.StatusReceived(
            status(
                loaded_models=[
                    pb.LoadedModel(id="qwen", slots=4, busy_slots=4, queued_requests=3),
                    pb.LoadedModel(id="gemma-3-270m-q4_k_m", slots=2, busy_slots=1, queued_requests=2),
                ]
            )
        )
    )
    clock.now = 1003.0
    state.apply(msg.StatusReceived(status(loaded_models=[])))
    xs, queued = state.performance.queued_requests.values()
    assert xs == [11.0, 12.0, 13.0]
    assert queued == [0, 5, 0]
    assert state.performance.busy_slots.values() == ([11.0, 12.0, 13.0], [0, 5, 0])
    assert state.performance.slots == 0  # as of the last poll
    assert state.performance.version == version + 3


def test_replayed_requests_count_once_in_the_first_token_plot(state):
    event = finished(at=1000.0, request_id="a", ttft=0.4)
    state.apply(msg.EngineEvent(event))
    replayed = pb.WatchEventsResponse()
    replayed.CopyFrom(event)
    replayed.replayed = True
    state.apply(msg.EngineEvent(replayed))
    # The engine's past, replayed to a watch opened after it: it counts.
    state.apply(
        msg.EngineEvent(
            pb.WatchEventsResponse(
                timestamp=980.0, replayed=True, request_finished=finished(request_id="b", ttft=0.6).request_finished
            )
        )
    )
    assert state.performance.time_to_first_token.values() == ([10.0, -10.0], [0.4, 0.6])


def test_the_performance_summary_tells_speed_first_token_and_queue(state, clock):
    from hearth.desktop.panel_performance import queue_summary, request_summary

    assert request_summary(state.performance) == "No finished requests yet: try the Playground."
    assert queue_summary(state.performance) == "No status from the engine yet."
    state.apply(msg.EngineEvent(finished(at=1000.0, tps=40.0, ttft=0.05)))
    state.apply(msg.EngineEvent(finished(at=1001.0, tps=60.0, ttft=2.0)))
    assert request_summary(state.performance) == (
        "2 requests, last 60.0 tokens/s, average 50.0 tokens/s; first token: last 2.00 s, average 1.02 s"
    )
    state.apply(
        msg.StatusReceived(status(loaded_models=[pb.LoadedModel(id="qwen", slots=4, busy_slots=4, queued_requests=3)]))
    )
    assert queue_summary(state.performance) == "Now: 3 waiting for a slot, 4 of 4 slots busy"


def test_a_reconnected_watch_replaying_the_past_adds_no_request_twice(state):
    first, second = finished(at=1000.0, request_id="a"), finished(at=1001.0, request_id="b")
    for event in (first, second):
        state.apply(msg.EngineEvent(event))
    # The watch drops and the engine replays its recent past to the new one, then a new request.
    for event in (first, second):
        replayed = pb.WatchEventsResponse()
        replayed.CopyFrom(event)
        replayed.replayed = True
        state.apply(msg.EngineEvent(replayed))
    state.apply(msg.EngineEvent(finished(at=1002.0, request_id="c")))
    assert [row.request_id for row in state.requests.rows] == ["a", "b", "c"]
    assert len(state.performance.tokens_per_second) == 3
    # A client may reuse its own id: a new request with it still counts.
    state.apply(msg.EngineEvent(finished(at=1003.0, request_id="a")))
    assert len(state.requests.rows) == 4
