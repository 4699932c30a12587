//! Sending email with lettre: `.eml` files in a folder by default (zero set-up), SMTP by
//! configuration. Called by the outbox worker only, after commit, off the async workers.

use crate::config::{EmailSettings, EmailTransport};
use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{FileTransport, Message, SmtpTransport, Transport};
use secrecy::ExposeSecret;
use sha2::Digest;
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

    /// Sends one email. Its `Message-ID` is derived from `key` (the outbox row's dedupe key):
    /// delivery is at-least-once (an instance that dies between sending and recording it
    /// sends again after its claim runs out), and the same id lets mail systems drop the copy.
    pub fn send(
        &self,
        key: &str,
        to: &str,
        subject: &str,
        body: &str,
        attachment: Option<(&str, &str)>,
    ) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad address: {e}"))?;
        let digest = hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16]);
        let domain = self.from.email.domain();
        let builder = Message::builder()
            .message_id(Some(format!("<{digest}@{domain}>")))
            .from(self.from.clone())
            .to(to)
            .subject(subject);
        let message = match attachment {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_owned()),
            Some((name, content)) => {
                let csv =
                    ContentType::parse("text/csv; charset=utf-8").map_err(|e| e.to_string())?;
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(body.to_owned()))
                        .singlepart(Attachment::new(name.to_owned()).body(content.to_owned(), csv)),
                )
            }
        }
        .map_err(|e| e.to_string())?;
        match &self.mailer {
            Mailer::File(t) => t.send(&message).map(|_| ()).map_err(|e| e.to_string()),
            Mailer::Smtp(t) => t.send(&message).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_ids(folder: &std::path::Path) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| {
                t.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                    .map(|l| l[11..].trim().to_owned())
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_same_outbox_key_sends_the_same_message_id() {
        let folder = std::env::temp_dir().join(format!("kopilka-mid-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let mail = Mail {
            from: "Kopilka <billing@kopilka.example>".parse().unwrap(),
            mailer: Mailer::File(FileTransport::new(&folder)),
        };
        mail.send("receipt:ch_1", "a@example.com", "Receipt", "1", None)
            .unwrap();
        mail.send("receipt:ch_1", "a@example.com", "Receipt", "1", None)
            .unwrap();
        mail.send("receipt:ch_2", "a@example.com", "Receipt", "2", None)
            .unwrap();
        let ids = message_ids(&folder);
        assert_eq!(ids.len(), 3);
        assert_eq!(
            ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
            2,
            "{ids:?}"
        );
        assert!(
            ids.iter().all(|i| i.ends_with("@kopilka.example>")),
            "{ids:?}"
        );
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn an_attachment_goes_as_its_own_part() {
        let folder = std::env::temp_dir().join(format!("kopilka-att-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let mail = Mail {
            from: "Kopilka <billing@kopilka.example>".parse().unwrap(),
            mailer: Mailer::File(FileTransport::new(&folder)),
        };
        let csv = "section,item\r\nbalance,opening\r\n";
        mail.send(
            "paid:1",
            "a@example.com",
            "Paid",
            "Attached.",
            Some(("s.csv", csv)),
        )
        .unwrap();
        let file = std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(
            text.contains("Content-Disposition: attachment; filename=\"s.csv\""),
            "{text}"
        );
        assert!(text.contains("text/csv"), "{text}");
        assert!(text.contains("balance,opening"), "{text}");
        let _ = std::fs::remove_dir_all(&folder);
    }
}
