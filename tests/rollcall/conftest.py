# The live service, the Twilio simulator and the phones of the notification tests.
from tests.notify.conftest import _simulator_server, phone, service, service_options, simulator  # noqa: F401
