"""Email providers' own webhooks read into reengage's events: Amazon SES (through SNS),
SendGrid, Postmark and Mailgun. Each module checks its provider's signature (or secret)
and turns a payload into :class:`~reengage.responses.ProviderEvent` s; ``common`` records
them the way ``POST /api/v1/events`` does."""
