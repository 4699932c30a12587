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

/// `MsgId` and `PmtInfId`: from a hash of the run and its lines, 35 characters each.
fn ids(run: &str, lines: &[&Line]) -> (String, String) {
    let mut hash = Sha256::new();
    hash.update(run.as_bytes());
    for l in lines {
        hash.update(b"\n");
        hash.update(l.id.as_bytes());
    }
    let hex = hex::encode(hash.finalize());
    (format!("M{}", &hex[..34]), format!("P{}", &hex[..34]))
}

/// The file of `lines` (the run's EUR lines that were sent, by id); `None` when there are none.
pub fn render(
    settings: &SepaSettings,
    version: &str,
    run: &str,
    lines: &[Line],
) -> Result<Option<String>, AppError> {
    let lines: Vec<&Line> = lines
        .iter()
        .filter(|l| l.currency == "EUR" && l.sent_at.is_some())
        .collect();
    let Some(sent) = lines.iter().filter_map(|l| l.sent_at).min() else {
        return Ok(None);
    };
    let v09 = version == "pain.001.001.09";
    let (msg_id, pmt_inf_id) = ids(run, &lines);
    let total: i64 = lines.iter().map(|l| l.net_minor()).sum();
    let (count, sum) = (lines.len(), decimal(total, "EUR"));
    let execution = next_business_day(sent.date()).format("%Y-%m-%d");
    let debtor = xml(&transliterate(&settings.debtor_name, 70));
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:{version}\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<CstmrCdtTrfInitn>\n"
    ));
    out.push_str(&format!(
        "<GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{}</CreDtTm><NbOfTxs>{count}</NbOfTxs>\
         <CtrlSum>{sum}</CtrlSum><InitgPty><Nm>{debtor}</Nm></InitgPty></GrpHdr>\n",
        sent.format("%Y-%m-%dT%H:%M:%S")
    ));
    let date = if v09 {
        format!("<ReqdExctnDt><Dt>{execution}</Dt></ReqdExctnDt>")
    } else {
        format!("<ReqdExctnDt>{execution}</ReqdExctnDt>")
    };
    out.push_str(&format!(
        "<PmtInf><PmtInfId>{pmt_inf_id}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>true</BtchBookg>\
         <NbOfTxs>{count}</NbOfTxs><CtrlSum>{sum}</CtrlSum>\
         <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>{date}\
         <Dbtr><Nm>{debtor}</Nm></Dbtr><DbtrAcct><Id><IBAN>{}</IBAN></Id></DbtrAcct>\
         <DbtrAgt>{}</DbtrAgt><ChrgBr>SLEV</ChrgBr>\n",
        xml(&settings.debtor_iban.replace(' ', "").to_ascii_uppercase()),
        agent(v09, settings.debtor_bic.as_deref()),
    ));
    for l in &lines {
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
        out.push_str(&format!(
            "<CdtTrfTxInf><PmtId><EndToEndId>{}</EndToEndId></PmtId>\
             <Amt><InstdAmt Ccy=\"EUR\">{}</InstdAmt></Amt>{creditor_agent}\
             <Cdtr><Nm>{name}</Nm>{address}</Cdtr><CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct>\
             <RmtInf><Ustrd>Kopilka creator payout {}</Ustrd></RmtInf></CdtTrfTxInf>\n",
            xml(&l.id),
            decimal(l.net_minor(), "EUR"),
            xml(&d.iban),
            xml(&l.id),
        ));
    }
    out.push_str("</PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n");
    Ok(Some(out))
}
