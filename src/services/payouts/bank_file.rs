//! The files finance hands to the bank: the SEPA credit transfer file of a run's EUR lines
//! (`sepa_file`), and for every other currency an RFC 4180 CSV for the bank portal, one row per
//! line sent. They hold the full account numbers, so only finance gets them, and every copy
//! handed out is recorded with its SHA-256. The same run gives the same bytes every time.

use super::{sepa_file, Destination};
use crate::app::AppState;
use crate::config::PayoutSettings;
use crate::db;
use crate::db::models::payouts::{audit, Line, Run};
use crate::db::DbConn;
use crate::domain::csv::text as field;
use crate::domain::money::decimal;
use crate::error::AppError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

/// Columns, in order; they only ever grow (at the end).
pub const COLUMNS: &str =
    "line_id,creator_id,holder_name,iban,bic,town,country,currency,amount_minor,amount";

/// One CSV row of a line, with its line break.
fn row(l: &Line) -> Result<String, AppError> {
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
    Ok(format!("{}\r\n", row.join(",")))
}

/// Which file of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The non-EUR lines, as CSV.
    Csv,
    /// The EUR lines, as `pain.001` of this version.
    Sepa(&'static str),
}

/// A file handed out, spooled to an unnamed temporary file as it was written (so a run's file
/// is never held in memory), and its length.
pub struct Spooled {
    pub file: File,
    pub len: u64,
}

/// The temporary file a download is written to, hashing what is written.
struct Spool {
    out: BufWriter<File>,
    hash: Sha256,
    len: u64,
}

impl Spool {
    fn new() -> Result<Spool, AppError> {
        Ok(Spool {
            out: BufWriter::with_capacity(64 * 1024, tempfile::tempfile().map_err(spooling)?),
            hash: Sha256::new(),
            len: 0,
        })
    }

    /// The file, rewound, and the SHA-256 of what was written.
    fn finish(self) -> Result<(Spooled, String), AppError> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| spooling(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(spooling)?;
        Ok((
            Spooled {
                file,
                len: self.len,
            },
            hex::encode(self.hash.finalize()),
        ))
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn spooling(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("spooling a bank file: {e}"))
}

/// Calls `each` with every line of the run's bank files, by id, a page at a time.
fn each_sent(
    conn: &mut DbConn,
    run: &str,
    page_lines: i64,
    mut each: impl FnMut(&Line) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let mut after: Option<String> = None;
    loop {
        let page = Line::sent_page(conn, run, &[], after.as_deref(), page_lines)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.id.clone());
        page.iter().try_for_each(&mut each)?;
    }
}

/// The CSV of the run's lines not in EUR; whether there were any.
fn write_csv(
    conn: &mut DbConn,
    run: &str,
    page_lines: i64,
    out: &mut Spool,
) -> Result<bool, AppError> {
    let mut any = false;
    each_sent(conn, run, page_lines, |l| {
        if l.currency == "EUR" {
            return Ok(());
        }
        if !any {
            write!(out, "{COLUMNS}\r\n").map_err(spooling)?;
            any = true;
        }
        out.write_all(row(l)?.as_bytes()).map_err(spooling)
    })?;
    Ok(any)
}

/// The SEPA file of the run's EUR lines: its header needs their count, sum and ids, so they
/// are read twice; the second reading must agree with the first. Whether there were any.
fn write_sepa(
    conn: &mut DbConn,
    settings: &PayoutSettings,
    version: &str,
    run: &str,
    out: &mut Spool,
) -> Result<bool, AppError> {
    let mut summary = sepa_file::Summary::new(run);
    each_sent(conn, run, settings.page_lines, |l| {
        summary.add(l).map(|_| ())
    })?;
    let Some(mut writer) = sepa_file::Writer::start(&mut *out, &settings.sepa, version, &summary)?
    else {
        return Ok(false);
    };
    let mut again = sepa_file::Summary::new(run);
    each_sent(conn, run, settings.page_lines, |l| {
        again.add(l)?;
        writer.line(l)
    })?;
    writer.finish()?;
    if !again.same_as(&summary) {
        return Err(AppError::conflict(
            "run_changed",
            "the run's lines changed while its file was written; download it again",
        ));
    }
    Ok(true)
}

/// A file of the run, recorded in its audit trail as handed to `actor` with its SHA-256.
pub async fn download(
    state: &AppState,
    actor: &str,
    id: &str,
    kind: Kind,
) -> Result<Spooled, AppError> {
    let (actor, id) = (actor.to_owned(), id.to_owned());
    let settings = state.settings.payouts.clone();
    db::transaction(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        let mut spool = Spool::new()?;
        let (written, name) = match kind {
            Kind::Csv => (
                write_csv(conn, &id, settings.page_lines, &mut spool)?,
                "bank-file.csv".to_owned(),
            ),
            Kind::Sepa(version) => (
                write_sepa(conn, &settings, version, &id, &mut spool)?,
                format!("sepa.xml ({version})"),
            ),
        };
        if !written {
            return Err(AppError::conflict(
                "invalid_state",
                match kind {
                    Kind::Csv => "no line of this run in a currency other than EUR was sent yet",
                    Kind::Sepa(_) => "no EUR line of this run was sent yet",
                },
            ));
        }
        let (file, sha) = spool.finish()?;
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
