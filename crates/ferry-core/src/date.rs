//! IMAP date-times (INTERNALDATE) to and from Unix seconds.
//!
//! The format is RFC 3501's `date-time`: `"17-Jul-1996 02:44:25 -0700"`.
//! ferry keeps a message's arrival date as Unix seconds (a Maildir file's
//! mtime) and writes it in UTC.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats Unix seconds as an IMAP date-time in UTC.
pub fn format_imap_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{day:02}-{}-{year:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Parses an IMAP date-time (leading space in the day allowed) into Unix
/// seconds; `None` when it is not one.
pub fn parse_imap_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(' ')?;
    let (time, zone) = rest.trim_start().split_once(' ')?;
    let mut date_parts = date.split('-');
    let day: i64 = date_parts.next()?.trim().parse().ok()?;
    let month_name = date_parts.next()?;
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as i64
        + 1;
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (
        time_parts.next()??,
        time_parts.next()??,
        time_parts.next()??,
    );
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || zone.len() != 5 {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zone_h: i64 = zone.get(1..3)?.parse().ok()?;
    let zone_m: i64 = zone.get(3..5)?.parse().ok()?;
    let local = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(local - sign * (zone_h * 3600 + zone_m * 60))
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month 1-12, day 1-31) to days since 1970-01-01.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_imap_date(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(format_imap_date(951_782_400), "29-Feb-2000 00:00:00 +0000");
        assert_eq!(
            format_imap_date(1_700_000_000),
            "14-Nov-2023 22:13:20 +0000"
        );
        assert_eq!(
            parse_imap_date("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            parse_imap_date(" 7-Jul-1996 02:44:25 +0000"),
            Some(836_707_465)
        );
        assert_eq!(parse_imap_date("17-Foo-1996 02:44:25 -0700"), None);
        assert_eq!(parse_imap_date("17-Jul-1996 25:44:25 -0700"), None);
        assert_eq!(parse_imap_date("garbage"), None);
    }

    proptest! {
        #[test]
        fn format_then_parse(unix in -2_000_000_000i64..4_000_000_000) {
            prop_assert_eq!(parse_imap_date(&format_imap_date(unix)), Some(unix));
        }
    }
}
