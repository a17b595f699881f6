"""Settings: profiles merge over settings.yaml, and the environment overrides any key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.settings import SettingsError, load_settings
from tests.conftest import ROOT


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_profiles_merge_deeply_in_order(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "llm:\n  model: base\n  max_tokens: 10\n")
    write(tmp_path, "settings-a.yaml", "llm:\n  model: from-a\n")
    write(tmp_path, "settings-b.yaml", "llm:\n  max_tokens: 99\n")
    settings = load_settings(tmp_path, ["a", "b"], environ={})
    assert settings.llm.model == "from-a"
    assert settings.llm.max_tokens == 99
    assert settings.profile == ["a", "b"]


def test_placeholders_expand_from_environment_with_defaults(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "llm:\n  base_url: ${URL:http://default/v1}\n")
    assert load_settings(tmp_path, [], environ={}).llm.base_url == "http://default/v1"
    given = load_settings(tmp_path, [], environ={"URL": "http://x/v1"})
    assert given.llm.base_url == "http://x/v1"


def test_placeholder_without_default_needs_the_variable(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "llm:\n  api_key: ${SECRET}\n")
    with pytest.raises(SettingsError, match="SECRET"):
        load_settings(tmp_path, [], environ={})


def test_any_key_is_overridable_with_typed_values(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "server:\n  port: 8080\n")
    environ = {"APPLIANCE__SERVER__PORT": "9191", "APPLIANCE__RETRIEVAL__TOP_K": "7"}
    settings = load_settings(tmp_path, [], environ=environ)
    assert settings.server.port == 9191
    assert settings.retrieval.top_k == 7


def test_misspelt_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "retrieval:\n  topk: 3\n")
    with pytest.raises(SettingsError, match="topk"):
        load_settings(tmp_path, [], environ={})


def test_unknown_profile_is_named(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "{}\n")
    with pytest.raises(SettingsError, match="nosuch"):
        load_settings(tmp_path, ["nosuch"], environ={})


def test_relative_paths_resolve_against_the_settings_folder(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "data_dir: somewhere\nmodels:\n  dir: m\n")
    settings = load_settings(tmp_path, [], environ={})
    assert settings.data_dir == tmp_path / "somewhere"
    # models.dir is relative to the data dir, so one data dir holds everything written.
    assert settings.models_dir == tmp_path / "somewhere" / "m"


def test_shipped_profiles_all_load() -> None:
    for profiles in (["embedded"], ["production"], ["embedded", "test"]):
        settings = load_settings(ROOT, profiles, environ={})
        assert settings.profile == profiles
    production = load_settings(ROOT, ["production"], environ={})
    assert production.vector_store.mode == "chroma_server"
    assert production.inference.profile == "gpu-mistral-gptq"


def test_data_dir_and_llm_url_have_named_variables() -> None:
    environ = {"APPLIANCE_DATA_DIR": "/srv/x", "APPLIANCE_LLM_BASE_URL": "http://gpu:9/v1"}
    settings = load_settings(ROOT, ["embedded"], environ=environ)
    assert settings.data_dir == Path("/srv/x")
    assert settings.chroma_dir == Path("/srv/x/chroma")
    assert settings.llm.base_url == "http://gpu:9/v1"


def test_shipped_settings_keep_the_guard_on_and_cohere_off() -> None:
    for profiles in (["embedded"], ["production"], ["embedded", "test"]):
        settings = load_settings(ROOT, profiles, environ={})
        assert settings.egress.guard is True and settings.egress.allow_hosts == []
        cohere = settings.connectors.cohere
        assert cohere.enabled is False and cohere.use_for == [] and cohere.allowed_collections == []


def test_cohere_key_file_is_relative_to_the_settings_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        "settings.yaml",
        "connectors:\n  cohere:\n    enabled: true\n    api_key_file: secrets/cohere.key\n",
    )
    settings = load_settings(tmp_path, [], environ={})
    assert settings.connectors.cohere.api_key_file == tmp_path / "secrets" / "cohere.key"


def test_cohere_settings_refuse_a_base_url_that_is_not_http(tmp_path: Path) -> None:
    write(tmp_path, "settings.yaml", "connectors:\n  cohere:\n    base_url: api.cohere.com\n")
    with pytest.raises(SettingsError, match="base_url"):
        load_settings(tmp_path, [], environ={})


def test_a_bare_off_means_the_word_not_false() -> None:
    environ = {
        "APPLIANCE__ANSWERING__UNSUPPORTED": "off",
        "APPLIANCE__ANSWERING__CITATION_CHECK": "off",
    }
    settings = load_settings(environ=environ)
    assert (settings.answering.unsupported, settings.answering.citation_check) == ("off", "off")
