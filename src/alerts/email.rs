//! Sending one notification as an e-mail through the `[smtp]` relay with lettre: one message to
//! every recipient of the channel, plain text and HTML. A 4xx reply or no answer is retried, a
//! 5xx reply is a permanent failure.
//!
//! The SMTP password goes only into lettre's `Credentials`, whose `Debug` hides it; lettre's
//! errors carry the server's reply text, which [`super::deliver`] redacts before storing.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::notification::{Attempt, Notification, describe};
use super::render;
use crate::config::alerts::{ChannelConfig, SmtpConfig, SmtpTls};

/// The longest any one SMTP command may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The relay, as every e-mail channel uses it.
pub(crate) fn transport(smtp: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match smtp.tls {
        // Plain SMTP, as configured: a relay on the same host or network.
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .with_context(|| format!("smtp.host `{}` cannot be used for STARTTLS", smtp.host))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .with_context(|| format!("smtp.host `{}` cannot be used for TLS", smtp.host))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(TIMEOUT));
    if !smtp.username.is_empty() {
        let password = smtp.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
        builder = builder.credentials(Credentials::new(smtp.username.clone(), password));
    }
    Ok(builder.build())
}

/// One e-mail channel.
pub(crate) struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSender {
    pub(crate) fn new(
        transport: AsyncSmtpTransport<Tokio1Executor>,
        smtp: &SmtpConfig,
        channel: &ChannelConfig,
    ) -> anyhow::Result<EmailSender> {
        let from = smtp.from.parse().with_context(|| format!("smtp.from `{}` is not a mailbox", smtp.from))?;
        let to = channel
            .to
            .iter()
            .map(|to| to.parse().with_context(|| format!("channel `{}`: `{to}` is not an address", channel.name)))
            .collect::<anyhow::Result<_>>()?;
        Ok(EmailSender { transport, from, to })
    }

    pub(crate) async fn send(&self, notification: &Notification) -> Attempt {
        let message = match self.message(notification) {
            Ok(message) => message,
            Err(e) => return Attempt::Failed(format!("email: the message could not be built: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Attempt::Sent,
            Err(e) if e.is_permanent() => Attempt::Failed(format!("email: {}", describe(&e))),
            // 4xx replies, and every failure to talk to the relay at all.
            Err(e) => Attempt::Retry { error: format!("email: {}", describe(&e)), after: None },
        }
    }

    fn message(&self, notification: &Notification) -> Result<Message, lettre::error::Error> {
        let mail = render::email(notification);
        let mut builder = Message::builder().from(self.from.clone()).subject(mail.subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        // Base64 whatever the text: any language, any line length, and nothing a relay rewraps.
        let part = |content_type: ContentType, body: String| {
            SinglePart::builder().header(content_type).header(ContentTransferEncoding::Base64).body(body)
        };
        builder.multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, mail.text))
                .singlepart(part(ContentType::TEXT_HTML, mail.html)),
        )
    }
}
