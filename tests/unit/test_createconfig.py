import pytest

from servin.containers.createconfig import (DEFAULT_SHM_SIZE, command_of, merge_image_config,
                                            normalize_config, normalize_host_config)
from servin.errors import InvalidArgument, NotFound

IMAGE = {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Cmd": ["sh"], "Entrypoint": None,
         "WorkingDir": "/srv", "User": "daemon", "Labels": {"a": "image", "b": "image"},
         "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}


def test_image_fills_what_the_request_leaves_empty():
    merged = merge_image_config({"Image": "x"}, IMAGE)
    assert merged["Cmd"] == ["sh"]
    assert merged["User"] == "daemon"
    assert merged["WorkingDir"] == "/srv"
    assert merged["StopSignal"] == "SIGQUIT"
    assert merged["ExposedPorts"] == {"80/tcp": {}}


def test_request_env_wins_and_image_env_is_appended():
    merged = merge_image_config({"Env": ["LANG=fr_FR", "X=1"]}, IMAGE)
    assert merged["Env"] == ["LANG=fr_FR", "X=1", "PATH=/usr/bin:/bin"]


def test_request_labels_override_image_labels():
    merged = merge_image_config({"Labels": {"b": "user"}}, IMAGE)
    assert merged["Labels"] == {"a": "image", "b": "user"}


def test_request_cmd_replaces_image_cmd():
    assert merge_image_config({"Cmd": ["echo", "hi"]}, IMAGE)["Cmd"] == ["echo", "hi"]


def test_request_entrypoint_drops_image_cmd():
    image = {**IMAGE, "Entrypoint": ["/init"], "Cmd": ["--serve"]}
    merged = merge_image_config({"Entrypoint": ["/bin/echo"]}, image)
    assert command_of(merged) == ("/bin/echo", [])


def test_empty_entrypoint_resets_the_image_entrypoint():
    image = {**IMAGE, "Entrypoint": ["/init"]}
    merged = merge_image_config({"Entrypoint": [""], "Cmd": ["ls"]}, image)
    assert command_of(merged) == ("ls", [])


def test_image_entrypoint_and_cmd_combine():
    image = {**IMAGE, "Entrypoint": ["/init", "-v"], "Cmd": ["--serve"]}
    assert command_of(merge_image_config({}, image)) == ("/init", ["-v", "--serve"])


def test_no_command_is_a_400():
    with pytest.raises(InvalidArgument, match="No command specified"):
        command_of(merge_image_config({}, {"Cmd": None}))


def test_config_needs_an_image():
    with pytest.raises(InvalidArgument, match="Config cannot be empty"):
        normalize_config({"Cmd": ["true"]})


@pytest.mark.parametrize("body", [{"Image": "x", "Cmd": 5}, {"Image": "x", "Env": [1]},
                                  {"Image": "x", "Labels": {"a": 1}},
                                  {"Image": "x", "Tty": "yes"}])
def test_mistyped_fields_are_400(body):
    with pytest.raises(InvalidArgument):
        normalize_config(body)


def test_string_cmd_is_accepted_as_a_list():
    assert normalize_config({"Image": "x", "Cmd": "true"})["Cmd"] == ["true"]


def test_host_config_defaults_as_inspect_shows_them():
    host_config = normalize_host_config(None)
    assert host_config["NetworkMode"] == "default"
    assert host_config["ShmSize"] == DEFAULT_SHM_SIZE
    assert host_config["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host_config["LogConfig"]["Type"] == "json-file"


def test_unknown_network_is_404():
    with pytest.raises(NotFound, match="network nosuchnet not found"):
        normalize_host_config({"NetworkMode": "nosuchnet"})


def test_auto_remove_with_restart_policy_is_refused():
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        normalize_host_config({"AutoRemove": True, "RestartPolicy": {"Name": "always"}})


def test_negative_shm_size_is_refused():
    with pytest.raises(InvalidArgument, match="SHM size"):
        normalize_host_config({"ShmSize": -1})
