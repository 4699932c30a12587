//! Regions: where a user is and where a pack may be sold, as ISO 3166-1 alpha-2 codes.
//! A pack licensed for some countries only (a character licensed for Japan, a charity pack for
//! one country) lists them; a user's country comes from their identity token.

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted.
const ASSIGNED: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS \
YE YT ZA ZM ZW";

/// An assigned ISO 3166-1 alpha-2 code, in upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region([u8; 2]);

impl Region {
    /// Any case in; `None` for anything that is not an assigned code.
    pub fn parse(code: &str) -> Option<Region> {
        let b = code.as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let upper = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
        ASSIGNED
            .split(' ')
            .any(|c| c.as_bytes() == upper)
            .then_some(Region(upper))
    }

    pub fn as_str(&self) -> &str {
        // Built only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pack's sale regions as the creator sends them: 1-249 assigned codes (any case), each once;
/// returned in upper case, sorted, so the stored form is canonical.
pub fn sale_regions(codes: &[String]) -> Result<Vec<Region>, String> {
    if codes.is_empty() {
        return Err(
            "sale_regions lists at least one region; leave it out (or null) to sell everywhere"
                .into(),
        );
    }
    if codes.len() > 249 {
        return Err(format!("at most 249 sale regions, got {}", codes.len()));
    }
    let mut out = Vec::with_capacity(codes.len());
    for c in codes {
        let r = Region::parse(c).ok_or_else(|| {
            format!(
                "{:?} is not an ISO 3166-1 alpha-2 country code",
                c.chars().take(8).collect::<String>()
            )
        })?;
        out.push(r);
    }
    out.sort();
    let n = out.len();
    out.dedup();
    if out.len() != n {
        return Err("each sale region is listed once".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_assigned_codes_are_regions() {
        assert_eq!(ASSIGNED.split(' ').count(), 249);
        assert_eq!(
            Region::parse("jp").map(|r| r.to_string()),
            Some("JP".into())
        );
        assert_eq!(
            Region::parse("DE").map(|r| r.to_string()),
            Some("DE".into())
        );
        // Reserved, user-assigned and malformed codes are not.
        for bad in ["UK", "EU", "XK", "AA", "ZZ", "J", "JPN", "", "J1", "ÄB"] {
            assert_eq!(Region::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sale_regions_are_canonical() {
        let got = sale_regions(&["us".into(), "JP".into()]).unwrap();
        assert_eq!(
            got.iter().map(Region::to_string).collect::<Vec<_>>(),
            ["JP", "US"]
        );
        assert!(sale_regions(&[]).is_err());
        assert!(sale_regions(&["JP".into(), "jp".into()]).is_err());
        assert!(sale_regions(&["XX".into()]).is_err());
    }
}
