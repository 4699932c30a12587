//! The file finance uploads to the bank portal: one row per line sent in a run, RFC 4180 CSV.
//! It holds the full account numbers, so only finance gets it, and every copy handed out is
//! recorded with its SHA-256. The same run gives the same bytes every time.

use super::Destination;
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
fn field(text: &str) -> String {
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

pub fn render(lines: &[Line]) -> String {
    let mut out = format!("{COLUMNS}\r\n");
    for l in lines {
        let d = Destination::of(l);
        let row = [
            field(&l.id),
            field(&l.creator_id),
            field(&d.holder_name),
            field(&d.iban),
            field(d.bic.as_deref().unwrap_or("")),
            field(&d.town),
            field(&d.country),
            field(&l.currency),
            l.amount_minor.to_string(),
            decimal(l.amount_minor, &l.currency),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The run's bank file, recorded as handed to `actor`.
pub async fn download(state: &AppState, actor: &str, id: &str) -> Result<String, AppError> {
    let (actor, id) = (actor.to_owned(), id.to_owned());
    db::transaction(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        let lines = Line::sent_of_run(conn, &id)?;
        if lines.is_empty() {
            return Err(AppError::conflict(
                "invalid_state",
                "no line of this run was sent yet (approve it, then send it)",
            ));
        }
        let file = render(&lines);
        let sha = hex::encode(Sha256::digest(file.as_bytes()));
        audit(
            conn,
            &id,
            None,
            &actor,
            "file_downloaded",
            &format!("bank-file.csv sha256 {sha}; {} lines", lines.len()),
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
