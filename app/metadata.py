"""Imports every table module so SQLModel.metadata is complete (for Alembic and the schema check)."""

from sqlmodel import SQLModel

from app import audit  # noqa: F401
from app.auth import models as auth_models  # noqa: F401
from app.escalation import models as escalation_models  # noqa: F401
from app.escalation.rules import models as rules_models  # noqa: F401
from app.hazards import models as hazard_models  # noqa: F401
from app.incidents import models as incident_models  # noqa: F401
from app.notices import models as notice_models  # noqa: F401
from app.notify import message_templates as message_template_models  # noqa: F401
from app.notify import models as notify_models  # noqa: F401
from app.org import models as org_models  # noqa: F401
from app.rollcall import models as rollcall_models  # noqa: F401
from app.roster import models as roster_models  # noqa: F401

metadata = SQLModel.metadata
