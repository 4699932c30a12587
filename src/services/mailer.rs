//! Sending email with lettre: `.eml` files in a folder by default (zero set-up), SMTP by
//! configuration. Called by the outbox worker only, after commit, off the async workers.

use crate::config::{EmailSettings, EmailTransport};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{FileTransport, Message, SmtpTransport, Transport};
use secrecy::ExposeSecret;
use std::time::Duration;

pub enum Mailer {
    File(FileTransport),
    Smtp(Box<SmtpTransport>),
}

pub struct Mail {
    pub from: Mailbox,
    pub mailer: Mailer,
}

impl Mail {
    pub fn from_settings(s: &EmailSettings) -> anyhow::Result<Mail> {
        let from: Mailbox = s.from.parse()?;
        let mailer = match s.transport {
            EmailTransport::File => {
                std::fs::create_dir_all(&s.folder)?;
                Mailer::File(FileTransport::new(&s.folder))
            }
            EmailTransport::Smtp => {
                let builder = match s.smtp_security.as_str() {
                    "none" => SmtpTransport::builder_dangerous(&s.smtp_host),
                    "tls" => SmtpTransport::relay(&s.smtp_host)?,
                    _ => SmtpTransport::starttls_relay(&s.smtp_host)?,
                };
                let mut builder = builder
                    .port(s.smtp_port)
                    .timeout(Some(Duration::from_secs(10)));
                if let (Some(user), Some(pass)) = (&s.smtp_username, &s.smtp_password) {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        pass.expose_secret().to_owned(),
                    ));
                }
                Mailer::Smtp(Box::new(builder.build()))
            }
        };
        Ok(Mail { from, mailer })
    }

    /// Sends one plain-text email; the error says why, for the outbox's `last_error`.
    pub fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| e.to_string())?;
        match &self.mailer {
            Mailer::File(t) => t.send(&message).map(|_| ()).map_err(|e| e.to_string()),
            Mailer::Smtp(t) => t.send(&message).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}
