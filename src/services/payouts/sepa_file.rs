//! The SEPA credit transfer file (ISO 20022 `pain.001.001.09`, or `.03`) of a run's EUR lines:
//! what finance uploads to the bank. Text is in SEPA's Latin character set, amounts in euros
//! with two decimals, ids at most 35 characters (`EndToEndId` is the line id), the requested
//! execution date the first TARGET business day after the lines were sent. The file depends
//! only on the lines, so every download of a run is the same file with the same `MsgId` (the
//! bank's duplicate check), and a line re-issued in another run makes a new one.

use super::Destination;
use crate::config::SepaSettings;
use crate::db::models::payouts::Line;
use crate::domain::money::decimal;
use crate::domain::sepa::{next_business_day, transliterate};
use crate::error::AppError;
use sha2::{Digest, Sha256};
use std::io::Write;

/// XML text: after transliteration only `'` could need escaping, but escape everything XML
/// reserves so no setting can break the document.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn agent(v09: bool, bic: Option<&str>) -> String {
    match bic {
        Some(bic) if v09 => format!("<FinInstnId><BICFI>{}</BICFI></FinInstnId>", xml(bic)),
        Some(bic) => format!("<FinInstnId><BIC>{}</BIC></FinInstnId>", xml(bic)),
        None => "<FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId>".to_owned(),
    }
}

/// What the file's header says of its lines, gathered one line at a time: how many, their
/// sum, when the first was sent, and `MsgId` and `PmtInfId` (35 characters each, from a hash of
/// the run and its line ids).
pub struct Summary {
    ids: Sha256,
    pub count: u64,
    pub total: i64,
    pub first_sent: Option<chrono::NaiveDateTime>,
}

impl Summary {
    pub fn new(run: &str) -> Summary {
        let mut ids = Sha256::new();
        ids.update(run.as_bytes());
        Summary {
            ids,
            count: 0,
            total: 0,
            first_sent: None,
        }
    }

    /// Counts a line if the file holds it (a EUR line that was sent); whether it does.
    pub fn add(&mut self, line: &Line) -> Result<bool, AppError> {
        let Some(sent) = line.sent_at.filter(|_| line.currency == "EUR") else {
            return Ok(false);
        };
        self.ids.update(b"\n");
        self.ids.update(line.id.as_bytes());
        self.count += 1;
        self.total = self.total.checked_add(line.net_minor()).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("the run's EUR lines overflow a sum"))
        })?;
        self.first_sent = Some(self.first_sent.map_or(sent, |first| first.min(sent)));
        Ok(true)
    }

    /// Whether two readings found the same lines.
    pub fn same_as(&self, other: &Summary) -> bool {
        (self.count, self.total, self.first_sent, self.ids())
            == (other.count, other.total, other.first_sent, other.ids())
    }

    fn ids(&self) -> (String, String) {
        let hex = hex::encode(self.ids.clone().finalize());
        (format!("M{}", &hex[..34]), format!("P{}", &hex[..34]))
    }
}

/// Writes a file: its header (from the [`Summary`] of all its lines), then each line, then
/// the end. The file depends only on the lines, so two downloads are the same bytes.
pub struct Writer<W: Write> {
    out: W,
    v09: bool,
}

impl<W: Write> Writer<W> {
    /// Starts the file; `None` when the summary holds no line (there is no file).
    pub fn start(
        mut out: W,
        settings: &SepaSettings,
        version: &str,
        summary: &Summary,
    ) -> Result<Option<Self>, AppError> {
        let Some(sent) = summary.first_sent else {
            return Ok(None);
        };
        let v09 = version == "pain.001.001.09";
        let (msg_id, pmt_inf_id) = summary.ids();
        let (count, sum) = (summary.count, decimal(summary.total, "EUR"));
        let execution = next_business_day(sent.date()).format("%Y-%m-%d");
        let debtor = xml(&transliterate(&settings.debtor_name, 70));
        let date = if v09 {
            format!("<ReqdExctnDt><Dt>{execution}</Dt></ReqdExctnDt>")
        } else {
            format!("<ReqdExctnDt>{execution}</ReqdExctnDt>")
        };
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:{version}\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<CstmrCdtTrfInitn>\n\
             <GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{}</CreDtTm><NbOfTxs>{count}</NbOfTxs>\
             <CtrlSum>{sum}</CtrlSum><InitgPty><Nm>{debtor}</Nm></InitgPty></GrpHdr>\n\
             <PmtInf><PmtInfId>{pmt_inf_id}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>true</BtchBookg>\
             <NbOfTxs>{count}</NbOfTxs><CtrlSum>{sum}</CtrlSum>\
             <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>{date}\
             <Dbtr><Nm>{debtor}</Nm></Dbtr><DbtrAcct><Id><IBAN>{}</IBAN></Id></DbtrAcct>\
             <DbtrAgt>{}</DbtrAgt><ChrgBr>SLEV</ChrgBr>\n",
            sent.format("%Y-%m-%dT%H:%M:%S"),
            xml(&settings.debtor_iban.replace(' ', "").to_ascii_uppercase()),
            agent(v09, settings.debtor_bic.as_deref()),
        )
        .map_err(written)?;
        Ok(Some(Writer { out, v09 }))
    }

    /// Writes a line the summary counted (others are skipped).
    pub fn line(&mut self, l: &Line) -> Result<(), AppError> {
        if l.currency != "EUR" || l.sent_at.is_none() {
            return Ok(());
        }
        let v09 = self.v09;
        let d = Destination::checked(l)?;
        let name = xml(&transliterate(&d.holder_name, 70));
        let town = xml(&transliterate(&d.town, 35));
        let address = if v09 {
            format!(
                "<PstlAdr><TwnNm>{town}</TwnNm><Ctry>{}</Ctry></PstlAdr>",
                xml(&d.country)
            )
        } else {
            format!(
                "<PstlAdr><Ctry>{}</Ctry><AdrLine>{town}</AdrLine></PstlAdr>",
                xml(&d.country)
            )
        };
        let creditor_agent = match d.bic.as_deref() {
            Some(bic) => format!("<CdtrAgt>{}</CdtrAgt>", agent(v09, Some(bic))),
            None => String::new(),
        };
        writeln!(
            self.out,
            "<CdtTrfTxInf><PmtId><EndToEndId>{}</EndToEndId></PmtId>\
             <Amt><InstdAmt Ccy=\"EUR\">{}</InstdAmt></Amt>{creditor_agent}\
             <Cdtr><Nm>{name}</Nm>{address}</Cdtr><CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct>\
             <RmtInf><Ustrd>Kopilka creator payout {}</Ustrd></RmtInf></CdtTrfTxInf>",
            xml(&l.id),
            decimal(l.net_minor(), "EUR"),
            xml(&d.iban),
            xml(&l.id),
        )
        .map_err(written)
    }

    pub fn finish(mut self) -> Result<W, AppError> {
        self.out
            .write_all(b"</PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n")
            .map_err(written)?;
        Ok(self.out)
    }
}

fn written(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("writing a bank file: {e}"))
}
