"""The tamper-evident audit log: hash-chained, HMAC-signed records of who did what."""

from appliance.audit.log import AuditLog, AuditLogBroken
from appliance.audit.record import AuditRecord
from appliance.audit.verify import VerifyProblem, VerifyReport

__all__ = ["AuditLog", "AuditLogBroken", "AuditRecord", "VerifyProblem", "VerifyReport"]
