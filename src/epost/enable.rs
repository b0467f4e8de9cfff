//! How each E-Post log is switched on, in Japanese and English, as the product guide this
//! project started from says (`../shared/seed/`, "15. ログを採ってみよう"): the E-Post Mail
//! Control checkbox and the service to restart, the registry values the GUI does not show, and
//! the folders that must be created by hand. One row per log kind; `check` prints the row of
//! every kind that is not being written. `{dir}` in a text is replaced by the mail work folder.

use crate::kind::Kind;

/// Where the services keep the switches the GUI does not show (under `HKEY_LOCAL_MACHINE`).
pub const SERVICES_KEY: &str = r"SYSTEM\CurrentControlSet\Services";
/// E-Post's own key (it descends from EMWAC IMS); `MailSpoolDir` is the mail work folder.
pub const IMS_KEY: &str = r"SOFTWARE\EMWAC\IMS";
pub const SPOOL_VALUE: &str = "MailSpoolDir";

/// A `REG_DWORD` under `HKLM\SYSTEM\CurrentControlSet\Services\<service>` that must be 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub service: &'static str,
    pub value: &'static str,
}

impl Switch {
    /// `SYSTEM\CurrentControlSet\Services\EPSTDS` (under HKLM).
    pub fn subkey(&self) -> String {
        format!(r"{SERVICES_KEY}\{}", self.service)
    }

    /// `HKLM\SYSTEM\CurrentControlSet\Services\EPSTDS\MailSendLocallogEnabled`, as printed.
    pub fn display(&self) -> String {
        format!(r"HKLM\{}\{}", self.subkey(), self.value)
    }
}

/// One log kind: what it is, the service that writes it, and how to switch it on.
#[derive(Debug, Clone, Copy)]
pub struct Enablement {
    pub kind: Kind,
    /// The guide's name of the log.
    pub title_ja: &'static str,
    pub title_en: &'static str,
    /// The service that writes it (restart it after changing a setting); `None`: not known.
    pub service: Option<&'static str>,
    /// The registry value that must be 1, for logs the GUI does not switch.
    pub registry: Option<Switch>,
    /// The folder `<dir>\<kind>` must be created by hand (E-Post writes there only if it exists).
    pub folder_by_hand: bool,
    /// Grows fast (every protocol line): warn about disk space and retention.
    pub grows_fast: bool,
    /// Written only when something happens (a failed delivery, a filtered mail): an old newest
    /// file is no sign that the log is off. The text says when, in ja and en.
    pub occasional: Option<(&'static str, &'static str)>,
    /// How to switch it on.
    pub ja: &'static str,
    pub en: &'static str,
}

const EPSTDS_LOCAL: Switch = Switch {
    service: "EPSTDS",
    value: "MailSendLocallogEnabled",
};
const EPSTPOP3S_DETAIL: Switch = Switch {
    service: "EPSTPOP3S",
    value: "AcceptlogEnabled",
};
const EPSTIMAP4S_DETAIL: Switch = Switch {
    service: "EPSTIMAP4S",
    value: "AcceptlogEnabled",
};

const fn row(kind: Kind, title_ja: &'static str, title_en: &'static str) -> Enablement {
    Enablement {
        kind,
        title_ja,
        title_en,
        service: None,
        registry: None,
        folder_by_hand: false,
        grows_fast: false,
        occasional: None,
        ja: "",
        en: "",
    }
}

/// Every kind, in `Kind::ALL` order.
pub const TABLE: [Enablement; 13] = [
    Enablement {
        service: Some("EPSTRS"),
        ja: "[E-Post Mail Control] → [ログ設定] → [接続マシンログ] をオン → [適用] → EPSTRS を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check 接続マシンログ (connecting machines log) → 適用 (Apply) → restart the EPSTRS service",
        ..row(Kind::Acceptlog, "接続マシンログ", "connecting machines log")
    },
    Enablement {
        service: Some("EPSTRS"),
        ja: "[E-Post Mail Control] → [ログ設定] → [SMTP受信ログ] をオン → [適用] → EPSTRS を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check SMTP受信ログ (SMTP receive log) → 適用 (Apply) → restart the EPSTRS service",
        ..row(Kind::Inlog, "SMTP受信ログ", "SMTP receive log")
    },
    Enablement {
        service: Some("EPSTRS"),
        folder_by_hand: true,
        grows_fast: true,
        ja: r"[ログ設定] の [接続マシンログ] をオンにしたうえで、フォルダ {dir}\receivelog を手動で作成 (mkdir {dir}\receivelog) → EPSTRS を再起動。記録をやめるにはフォルダ名を変える",
        en: r"with 接続マシンログ (connecting machines log) checked in ログ設定, create the folder {dir}\receivelog by hand (mkdir {dir}\receivelog) → restart the EPSTRS service; rename the folder to stop it",
        ..row(
            Kind::Receivelog,
            "SMTP受信詳細ログ",
            "SMTP receive detail log",
        )
    },
    Enablement {
        service: Some("EPSTDS"),
        ja: "[E-Post Mail Control] → [ログ設定] → [SMTP送信ログ] をオン → [適用] → EPSTDS を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check SMTP送信ログ (SMTP send log) → 適用 (Apply) → restart the EPSTDS service",
        ..row(Kind::Outlog, "SMTP送信ログ", "SMTP send log")
    },
    Enablement {
        service: Some("EPSTDS"),
        registry: Some(EPSTDS_LOCAL),
        ja: r"E-Post Mail Control には設定がない: レジストリ HKLM\SYSTEM\CurrentControlSet\Services\EPSTDS に DWORD 値 MailSendLocallogEnabled = 1 を作成 (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTDS /v MailSendLocallogEnabled /t REG_DWORD /d 1 /f) → EPSTDS を再起動",
        en: r"not in E-Post Mail Control: create the DWORD value MailSendLocallogEnabled = 1 under HKLM\SYSTEM\CurrentControlSet\Services\EPSTDS (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTDS /v MailSendLocallogEnabled /t REG_DWORD /d 1 /f) → restart the EPSTDS service",
        ..row(
            Kind::Outlocallog,
            "SMTPローカル送信ログ",
            "SMTP local delivery log",
        )
    },
    Enablement {
        service: Some("EPSTDS"),
        occasional: Some((
            "最終的に配送に失敗したメールがあったときだけ書かれる",
            "written only when a delivery finally fails",
        )),
        ja: "[E-Post Mail Control] → [ログ設定] → [配送失敗ログ] をオン → [適用] → EPSTDS を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check 配送失敗ログ (delivery failure log) → 適用 (Apply) → restart the EPSTDS service",
        ..row(Kind::Faillog, "配送失敗ログ", "delivery failure log")
    },
    Enablement {
        service: Some("EPSTDS"),
        grows_fast: true,
        ja: "[E-Post Mail Control] → [ログ設定] → [配送時の詳細ログ] をオン → [適用] → EPSTDS を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check 配送時の詳細ログ (delivery detail log) → 適用 (Apply) → restart the EPSTDS service",
        ..row(Kind::Senderlog, "配送時の詳細ログ", "delivery detail log")
    },
    Enablement {
        service: Some("EPSTPOP3S"),
        ja: "[E-Post Mail Control] → [ログ設定] → [POP3ログ] をオン → [適用] → EPSTPOP3S を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check POP3ログ (POP3 log) → 適用 (Apply) → restart the EPSTPOP3S service",
        ..row(Kind::Pop3log, "POP3ログ", "POP3 log")
    },
    Enablement {
        service: Some("EPSTPOP3S"),
        registry: Some(EPSTPOP3S_DETAIL),
        folder_by_hand: true,
        ja: r"レジストリ HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S に DWORD 値 AcceptlogEnabled = 1 を作成 (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S /v AcceptlogEnabled /t REG_DWORD /d 1 /f)、フォルダ {dir}\receivepop3 を手動で作成 (mkdir {dir}\receivepop3) → EPSTPOP3S を再起動",
        en: r"create the DWORD value AcceptlogEnabled = 1 under HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S /v AcceptlogEnabled /t REG_DWORD /d 1 /f) and the folder {dir}\receivepop3 by hand (mkdir {dir}\receivepop3) → restart the EPSTPOP3S service",
        ..row(Kind::Receivepop3, "POP3の詳細ログ", "POP3 detail log")
    },
    Enablement {
        service: Some("EPSTIMAP4S"),
        ja: "[E-Post Mail Control] → [ログ設定] → [IMAP4ログ] をオン → [適用] → EPSTIMAP4S を再起動",
        en: "E-Post Mail Control → ログ設定 (log settings) → check IMAP4ログ (IMAP4 log) → 適用 (Apply) → restart the EPSTIMAP4S service",
        ..row(Kind::Imap4log, "IMAP4ログ", "IMAP4 log")
    },
    Enablement {
        service: Some("EPSTIMAP4S"),
        registry: Some(EPSTIMAP4S_DETAIL),
        folder_by_hand: true,
        ja: r"レジストリ HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S に DWORD 値 AcceptlogEnabled = 1 を作成 (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S /v AcceptlogEnabled /t REG_DWORD /d 1 /f)、フォルダ {dir}\receiveimap4 を手動で作成 (mkdir {dir}\receiveimap4) → EPSTIMAP4S を再起動",
        en: r"create the DWORD value AcceptlogEnabled = 1 under HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S /v AcceptlogEnabled /t REG_DWORD /d 1 /f) and the folder {dir}\receiveimap4 by hand (mkdir {dir}\receiveimap4) → restart the EPSTIMAP4S service",
        ..row(Kind::Receiveimap4, "IMAP4詳細ログ", "IMAP4 detail log")
    },
    Enablement {
        service: Some("EPSTRS"),
        occasional: Some((
            "重複・初回メール検出 (FIRST_TIME_MAIL) が働いたときだけ書かれる",
            "written only when first-time / duplicate mail detection (FIRST_TIME_MAIL) matches",
        )),
        ja: "ガイドに記載なし (重複・初回メール検出の記録で、めったに使われない)。使わないなら何もしなくてよい",
        en: "not covered by the guide (the first-time / duplicate mail detection record, rarely used); nothing to do if you do not use it",
        ..row(Kind::Maildblog, "メールDBログ", "mail DB log")
    },
    Enablement {
        service: Some("EPSTRS"),
        occasional: Some((
            "メールフィルタで受領拒否され、保管指定のあるメールがあったときだけ保管される",
            "a pair is kept only when the mail filter refuses a mail whose pattern says to keep it",
        )),
        ja: "[E-Post Mail Control] → [メールフィルタ] → [メールフィルタ機能を使用する] をオン → EPSTRS を再起動 (mail.dat のパターンに保管指定が必要)",
        en: "E-Post Mail Control → メールフィルタ (mail filter) → check メールフィルタ機能を使用する (use the mail filter) → restart the EPSTRS service (the pattern in mail.dat must say to keep the mail)",
        ..row(
            Kind::Viruslog,
            "メールフィルタ対象メールの保管",
            "mail filter quarantine",
        )
    },
];

/// The row of a kind.
pub fn of(kind: Kind) -> &'static Enablement {
    TABLE.iter().find(|e| e.kind == kind).unwrap_or(&TABLE[0])
}

/// Printed once when a fast-growing log is on.
pub const GROWS_FAST_JA: &str = "receivelog と senderlog は記録が膨大になりやすい: ディスクに注意。logclean.vbs の代わりに設定ファイルの [retention] (keep_days, action = \"gzip\" または \"delete\", schedule) を使う (全シンクに送信済みのファイルだけが対象)";
pub const GROWS_FAST_EN: &str = "receivelog and senderlog grow fast: watch the disk. [retention] in the config (keep_days, action = \"gzip\" or \"delete\", schedule) replaces logclean.vbs (it only touches files every sink has acknowledged)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_kind_in_order() {
        for (row, kind) in TABLE.iter().zip(Kind::ALL) {
            assert_eq!(row.kind, kind);
            assert!(!row.ja.is_empty() && !row.en.is_empty(), "{kind}");
        }
    }

    /// The texts name what the structured fields say, so that the two cannot drift apart.
    #[test]
    fn texts_agree_with_the_fields() {
        for row in &TABLE {
            if let Some(s) = row.service.filter(|_| row.kind != Kind::Maildblog) {
                assert!(row.ja.contains(s) && row.en.contains(s), "{}", row.kind);
            }
            if let Some(r) = row.registry {
                for t in [row.ja, row.en] {
                    assert!(
                        t.contains(&r.subkey()) && t.contains(r.value),
                        "{}",
                        row.kind
                    );
                }
            }
            if row.folder_by_hand {
                let folder = format!(r"{{dir}}\{}", row.kind.name());
                assert!(
                    row.ja.contains(&folder) && row.en.contains(&folder),
                    "{}",
                    row.kind
                );
            }
        }
    }
}
