"""The portal's vocabulary: the service it offers, the statuses of a request with their labels (ru / kk),
the messages of the regulation's refusals, and the refusal the citizen sees (`PortalError`)."""
from __future__ import annotations

SERVICE = "PHC_ATTACHMENT"
SERVICE_NAMES = {"ru": "Прикрепление к медицинской организации, оказывающей первичную медико-санитарную помощь",
                 "kk": "Медициналық-санитариялық алғашқы көмек көрсететін медициналық ұйымға тіркеу"}
DRAFT, SIGNING, SENT, IN_PROGRESS, COMPLETED, REFUSED, ERROR = (
    "DRAFT", "SIGNING", "SENT", "IN_PROGRESS", "COMPLETED", "REFUSED", "ERROR")
STATUS_LABELS = {
    DRAFT: {"ru": "Черновик", "kk": "Жоба"},
    SIGNING: {"ru": "Подписание", "kk": "Қол қою"},
    SENT: {"ru": "Заявка отправлена", "kk": "Өтінім жіберілді"},
    IN_PROGRESS: {"ru": "В обработке", "kk": "Өңделуде"},
    COMPLETED: {"ru": "Исполнена", "kk": "Орындалды"},
    REFUSED: {"ru": "Отказано", "kk": "Бас тартылды"},
    ERROR: {"ru": "Ошибка", "kk": "Қате"},
}
OPEN = (SENT, IN_PROGRESS)
AUTH_REFUSED = "Отказ в авторизации"
EDS_REFUSED = "Отказ в оказании услуги в связи с неподтверждением ЭЦП"


class PortalError(Exception):
    """A refusal the citizen sees as JSON: HTTP status, stable code, message, and details."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def as_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.details}


class Invalid(PortalError):
    def __init__(self, fields: dict[str, str]):
        super().__init__(400, "VALIDATION_FAILED", "Проверьте заполнение полей", fields=fields)
