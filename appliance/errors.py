"""Errors a user can meet, each with a sentence a person understands and one HTTP status."""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every user-facing error; `status_code` is what the API answers with."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InferenceUnavailable(ApplianceError):
    status_code = 503


class VectorStoreUnavailable(ApplianceError):
    status_code = 503


class DocumentNotFound(ApplianceError):
    status_code = 404


class DocumentRejected(ApplianceError):
    """A document that cannot be indexed; it fails alone, the rest of the job goes on."""

    status_code = 422


class UnsupportedFileType(DocumentRejected):
    status_code = 415


class DocumentTooLarge(DocumentRejected):
    status_code = 413


class EmptyDocument(DocumentRejected):
    pass


class DocumentUnreadable(DocumentRejected):
    pass


class QueueUnavailable(ApplianceError):
    status_code = 503


class UploadRejected(ApplianceError):
    status_code = 400


class QuestionRejected(ApplianceError):
    """A question that cannot be answered as asked: empty, or longer than the limit."""

    status_code = 422


class AuthenticationFailed(ApplianceError):
    status_code = 401


class PermissionDenied(ApplianceError):
    status_code = 403


class KeyNotFound(ApplianceError):
    status_code = 404


class EgressDenied(ApplianceError):
    """The egress guard or a connector refused to send data outside the allowed destinations.

    502, not 403: the asker did nothing wrong and no other credentials would help; the appliance
    refused to reach an upstream, which an administrator changes in settings (403 stays what
    auth answers when a principal may not read something).
    """

    status_code = 502


class ConnectorUnavailable(ApplianceError):
    """An enabled outbound connector (Cohere) failed or did not answer in time."""

    status_code = 503


class InferenceTooSlow(InferenceUnavailable):
    """The inference service did not start answering within answering.first_token_budget_s."""

    status_code = 504


class TooManyRequests(ApplianceError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
