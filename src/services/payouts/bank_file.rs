//! The files finance hands to the bank: the SEPA credit transfer file of a run's EUR lines
//! (`sepa_file`), and for every other currency an RFC 4180 CSV for the bank portal, one row per
//! line sent. They hold the full account numbers, so only finance gets them, and every copy
//! handed out is recorded with its SHA-256. The same run gives the same bytes every time.

use super::{sepa_file, Destination};
use crate::app::AppState;
use crate::db;
use crate::db::models::payouts::{audit, Line, Run};
use crate::domain::money::decimal;
use crate::error::AppError;
use sha2::{Digest, Sha256};

/// Columns, in order; they only ever grow (at the end).
pub const COLUMNS: &str =
    "line_id,creator_id,holder_name,iban,bic,town,country,currency,amount_minor,amount";

/// One CSV field: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`,
/// `-`, `@`, tab or CR is prefixed with `'` so a spreadsheet never runs it as a formula
/// (free text only: the amount columns are written as numbers).
pub(super) fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn render(lines: &[Line]) -> Result<String, AppError> {
    let mut out = format!("{COLUMNS}\r\n");
    for l in lines {
        let d = Destination::checked(l)?;
        let row = [
            field(&l.id),
            field(&l.creator_id),
            field(&d.holder_name),
            field(&d.iban),
            field(d.bic.as_deref().unwrap_or("")),
            field(&d.town),
            field(&d.country),
            field(&l.currency),
            l.net_minor().to_string(),
            decimal(l.net_minor(), &l.currency),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok(out)
}

/// Which file of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The non-EUR lines, as CSV.
    Csv,
    /// The EUR lines, as `pain.001` of this version.
    Sepa(&'static str),
}

/// A file of the run, recorded in its audit trail as handed to `actor`.
pub async fn download(
    state: &AppState,
    actor: &str,
    id: &str,
    kind: Kind,
) -> Result<String, AppError> {
    let (actor, id) = (actor.to_owned(), id.to_owned());
    let sepa = state.settings.payouts.sepa.clone();
    db::transaction(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        let lines = Line::sent_of_run(conn, &id)?;
        let (file, name) = match kind {
            Kind::Csv => {
                let other: Vec<Line> = lines.into_iter().filter(|l| l.currency != "EUR").collect();
                (
                    match other.is_empty() {
                        true => None,
                        false => Some(render(&other)?),
                    },
                    "bank-file.csv".to_owned(),
                )
            }
            Kind::Sepa(version) => (
                sepa_file::render(&sepa, version, &id, &lines)?,
                format!("sepa.xml ({version})"),
            ),
        };
        let Some(file) = file else {
            return Err(AppError::conflict(
                "invalid_state",
                match kind {
                    Kind::Csv => "no line of this run in a currency other than EUR was sent yet",
                    Kind::Sepa(_) => "no EUR line of this run was sent yet",
                },
            ));
        };
        let sha = hex::encode(Sha256::digest(file.as_bytes()));
        audit(
            conn,
            &id,
            None,
            &actor,
            "file_downloaded",
            &format!("{name} sha256 {sha}"),
        )?;
        Ok(file)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_neutralized_and_quoted() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("Müller, Söhne"), "\"Müller, Söhne\"");
        assert_eq!(field("plain"), "plain");
    }
}
