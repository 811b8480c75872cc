"""Pure units: the error tree is catchable the way Python users expect."""

from __future__ import annotations

import errno
import pickle

import pytest

from deeplake_sdk import ClosedError, FsError, RateLimitError, ServerError, ServiceUnavailableError
from deeplake_sdk.errors import NetworkError
from deeplake_sdk.http_errors import error_for_status, is_ambiguous, is_refusal, is_unreachable


@pytest.mark.parametrize(
    ("code", "builtin"),
    [
        (errno.ENOENT, FileNotFoundError),
        (errno.EISDIR, IsADirectoryError),
        (errno.ENOTDIR, NotADirectoryError),
        (errno.EEXIST, FileExistsError),
        (errno.EPERM, PermissionError),
    ],
)
def test_fs_errors_are_the_builtin_oserrors_of_their_errno(code, builtin):
    error = FsError(code, "/a.md", "why")
    assert isinstance(error, builtin) and isinstance(error, FsError)
    assert (error.errno, error.strerror, error.filename) == (code, "why", "/a.md")
    with pytest.raises(builtin):
        raise error
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)


def test_other_fs_errors_stay_plain_fs_errors():
    error = FsError(errno.ENOTEMPTY, "/d")
    assert type(error) is FsError and not isinstance(error, FileNotFoundError)
    assert str(error) == "[ENOTEMPTY] Directory not empty: /d"


def test_503_is_an_overload_and_a_server_error_429_only_an_overload():
    unavailable = error_for_status(503, {"retry-after": "1"}, b'{"error": "busy"}')
    assert type(unavailable) is ServiceUnavailableError
    assert isinstance(unavailable, RateLimitError) and isinstance(unavailable, ServerError)
    limited = error_for_status(429, {}, b"")
    assert isinstance(limited, RateLimitError) and not isinstance(limited, ServerError)
    assert not is_ambiguous(unavailable)  # it was not executed
    assert is_ambiguous(error_for_status(502, {}, b""))


def test_refusals_are_what_a_resend_cannot_fix():
    assert is_refusal(error_for_status(400, {}, b'{"error": "invalid input"}'))
    assert is_refusal(error_for_status(413, {}, b'{"error": "too large"}'))
    for status in (401, 402, 403, 408, 429, 500, 503):
        assert not is_refusal(error_for_status(status, {}, b'{"error": "x"}'))
    missing = error_for_status(400, {}, b'{"error": "relation \\"memory\\" does not exist"}')
    assert not is_refusal(missing)  # the table can be created


def test_closed_objects_raise_one_error_that_is_a_value_error():
    assert issubclass(ClosedError, ValueError)


@pytest.mark.parametrize(
    ("status", "unreachable"), [(500, True), (502, True), (503, True), (429, True), (400, False)]
)
def test_an_answer_that_may_succeed_later_says_the_service_is_unreachable(status, unreachable):
    assert is_unreachable(error_for_status(status, {}, b"{}")) is unreachable


def test_no_connection_says_the_service_is_unreachable_and_a_bad_token_does_not():
    assert is_unreachable(NetworkError("cannot connect"))
    assert not is_unreachable(error_for_status(401, {}, b'{"error": "invalid token"}'))
