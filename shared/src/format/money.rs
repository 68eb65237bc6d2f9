//! Amounts in a currency's minor units (Stripe's convention), written for
//! people: `2000` `usd` → `20.00 USD`, `500` `jpy` → `500 JPY`.

/// Zero-decimal currencies, as Stripe lists them.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Decimal places of the minor unit. ISK, HUF and TWD are two-decimal in
/// Stripe's API amounts, so they take the default.
pub fn minor_unit_digits(currency: &str) -> u32 {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

/// `amount` minor units of `currency`, with thousands separators and the
/// upper-case code: `123456` `usd` → `1,234.56 USD`.
pub fn format_minor(amount: i64, currency: &str) -> String {
    let digits = minor_unit_digits(currency);
    let scale = 10u64.pow(digits);
    let abs = amount.unsigned_abs();
    let (whole, frac) = (abs / scale, abs % scale);
    let mut out = String::new();
    if amount < 0 {
        out.push('-');
    }
    out.push_str(&group_thousands(whole));
    if digits > 0 {
        out.push('.');
        out.push_str(&format!("{frac:0width$}", width = digits as usize));
    }
    let code = currency.trim().to_ascii_uppercase();
    if !code.is_empty() {
        out.push(' ');
        out.push_str(&code);
    }
    out
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_currencies() {
        assert_eq!(format_minor(2000, "usd"), "20.00 USD");
        assert_eq!(format_minor(5, "eur"), "0.05 EUR");
        assert_eq!(format_minor(123_456_789, "gbp"), "1,234,567.89 GBP");
        assert_eq!(format_minor(-1050, "usd"), "-10.50 USD");
        assert_eq!(format_minor(0, "usd"), "0.00 USD");
    }

    #[test]
    fn zero_and_three_decimal_currencies() {
        assert_eq!(format_minor(500, "jpy"), "500 JPY");
        assert_eq!(format_minor(1_000_000, "KRW"), "1,000,000 KRW");
        assert_eq!(format_minor(5120, "kwd"), "5.120 KWD");
        // Stripe takes ISK as two-decimal API amounts.
        assert_eq!(format_minor(500, "isk"), "5.00 ISK");
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(
            format_minor(i64::MIN, "usd"),
            "-92,233,720,368,547,758.08 USD"
        );
        assert_eq!(format_minor(12, ""), "0.12");
    }
}
