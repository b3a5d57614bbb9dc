"""The Models tab's per-model settings form: a model's saved settings as the
form shows them, read back unchanged, blanks leaving the engine's own, and
each field's mistake said before anything is sent."""

import pytest

from hearth.desktop.model_settings_form import ENGINE_DEFAULT, ModelSettingsValues, form_values, read_form
from hearth.engine.v1 import engine_pb2 as pb

pytestmark = pytest.mark.unit


def test_saved_settings_show_in_the_form_and_read_back_unchanged():
    saved = pb.ModelSettings(
        context_window=2048,
        gpu_layers=-1,
        parallel=2,
        kv_cache_type="q8_0",
        keep_alive_seconds=3600,
        system="Be brief.",
        chat_template="{{ messages }}",
        parameters={"temperature": "0.2", "stop": '["###"]'},
    )
    values = form_values(saved)
    assert (values.context_window, values.gpu_layers, values.keep_alive) == ("2048", "-1", "3600")
    assert values.parameters == 'stop ["###"]\ntemperature 0.2'
    assert read_form(values) == (saved, {})


def test_blank_fields_leave_the_engines_settings():
    settings, errors = read_form(ModelSettingsValues())
    assert errors == {} and settings == pb.ModelSettings()
    assert form_values(pb.ModelSettings()).kv_cache_type == ENGINE_DEFAULT
    # A bare stop string is one stop string.
    settings, _ = read_form(ModelSettingsValues(parameters="stop ###\n\ntop_k 40"))
    assert dict(settings.parameters) == {"stop": '["###"]', "top_k": "40"}


@pytest.mark.parametrize(
    "field, text, says",
    [
        ("context_window", "big", "whole number"),
        ("context_window", "100", "between 256"),
        ("gpu_layers", "-2", "between -1"),
        ("parallel", "65", "between 1 and 64"),
        ("keep_alive", "soon", "number of seconds"),
        ("keep_alive", "nan", "-1 (always)"),
        ("parameters", "temperature", "no value"),
    ],
)
def test_each_mistake_is_said_in_its_field(field, text, says):
    settings, errors = read_form(ModelSettingsValues(**{field: text}))
    assert settings is None and says in errors[field]
