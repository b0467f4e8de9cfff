//! `check` on E-Post's own terms, from the folders alone (Linux: no registry): for every log
//! kind whether it is being written, and how to switch on the ones that are not, in Japanese
//! and English as the product guide (`../shared/seed/`) says. The expected lines are written
//! out here from the guide, not taken from the shipper's table.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

fn day_name(days_ago: i64) -> String {
    (chrono::Local::now().date_naive() - chrono::Duration::days(days_ago))
        .format("%y%m%d.log")
        .to_string()
}

fn put(root: &Path, rel: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"[01/Dec/2026:10:00:00] x\r\n").unwrap();
}

fn check(args: &[&str]) -> Output {
    Command::new(BIN).arg("check").args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Some kinds fresh, some stale, some missing: each one's line, and the instructions under
/// the ones that are not written.
#[test]
fn every_kind_is_reported_with_how_to_switch_it_on() {
    // the names depend on today's date: run again if midnight passed during the run
    for _ in 0..2 {
        let before = day_name(0);
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("mail");
        put(&m, &format!("inlog/MAILSV01/{}", day_name(0)));
        put(&m, &format!("acceptlog/MAILSV01/{}", day_name(40)));
        put(&m, &format!("acceptlog/MAILSV01/{}", day_name(1)));
        put(&m, &format!("outlocallog/{}", day_name(3))); // no host folder; 3 days: still on
        put(&m, &format!("pop3log/MAILSV01/{}", day_name(4))); // 4 days: stale
        put(&m, &format!("outlog/MAILSV01/{}", day_name(10)));
        put(&m, &format!("faillog/MAILSV01/{}", day_name(30))); // occasional: quiet
        put(&m, "viruslog/B0000000001.RCP"); // no date in the name: its mtime, today
        put(&m, "viruslog/B0000000001.MSG");
        std::fs::create_dir_all(m.join("senderlog/MAILSV01")).unwrap(); // folder, no file
        let out = check(&["--folder", m.to_str().unwrap()]);
        if day_name(0) != before {
            continue;
        }
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        let sep = std::path::MAIN_SEPARATOR;
        let dir = m.display().to_string();
        let mut want = vec![format!("E-Post mail work folder {dir} (--folder):")];
        let mut kind = |l: String, how: &[String]| {
            want.push(l);
            want.extend(how.iter().cloned());
        };
        let ind = "                ";
        kind(
            format!("  acceptlog     on    newest {} (yesterday)", day_name(1)),
            &[],
        );
        kind(
            format!("  inlog         on    newest {} (today)", day_name(0)),
            &[],
        );
        kind(
            "  receivelog    off   no folder receivelog".into(),
            &[
                format!(
                    "{ind}ja: [ログ設定] の [接続マシンログ] をオンにしたうえで、フォルダ {dir}{sep}receivelog を手動で作成 (mkdir {dir}{sep}receivelog) → EPSTRS を再起動。記録をやめるにはフォルダ名を変える"
                ),
                format!(
                    "{ind}en: with 接続マシンログ (connecting machines log) checked in ログ設定, create the folder {dir}{sep}receivelog by hand (mkdir {dir}{sep}receivelog) → restart the EPSTRS service; rename the folder to stop it"
                ),
            ],
        );
        kind(
            format!(
                "  outlog        stale newest {} (10 days ago)",
                day_name(10)
            ),
            &[
                format!(
                    "{ind}ja: [E-Post Mail Control] → [ログ設定] → [SMTP送信ログ] をオン → [適用] → EPSTDS を再起動"
                ),
                format!(
                    "{ind}en: E-Post Mail Control → ログ設定 (log settings) → check SMTP送信ログ (SMTP send log) → 適用 (Apply) → restart the EPSTDS service"
                ),
            ],
        );
        kind(
            format!("  outlocallog   on    newest {} (3 days ago)", day_name(3)),
            &[],
        );
        kind(
            format!(
                "  faillog       quiet newest {} (30 days ago)",
                day_name(30)
            ),
            &[
                format!("{ind}ja: 最終的に配送に失敗したメールがあったときだけ書かれる"),
                format!("{ind}en: written only when a delivery finally fails"),
            ],
        );
        kind(
            "  senderlog     off   folder present, no log file".into(),
            &[
                format!(
                    "{ind}ja: [E-Post Mail Control] → [ログ設定] → [配送時の詳細ログ] をオン → [適用] → EPSTDS を再起動"
                ),
                format!(
                    "{ind}en: E-Post Mail Control → ログ設定 (log settings) → check 配送時の詳細ログ (delivery detail log) → 適用 (Apply) → restart the EPSTDS service"
                ),
            ],
        );
        kind(
            format!("  pop3log       stale newest {} (4 days ago)", day_name(4)),
            &[
                format!(
                    "{ind}ja: [E-Post Mail Control] → [ログ設定] → [POP3ログ] をオン → [適用] → EPSTPOP3S を再起動"
                ),
                format!(
                    "{ind}en: E-Post Mail Control → ログ設定 (log settings) → check POP3ログ (POP3 log) → 適用 (Apply) → restart the EPSTPOP3S service"
                ),
            ],
        );
        kind(
            "  receivepop3   off   no folder receivepop3".into(),
            &[
                format!(
                    r"{ind}ja: レジストリ HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S に DWORD 値 AcceptlogEnabled = 1 を作成 (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S /v AcceptlogEnabled /t REG_DWORD /d 1 /f)、フォルダ {dir}{sep}receivepop3 を手動で作成 (mkdir {dir}{sep}receivepop3) → EPSTPOP3S を再起動"
                ),
                format!(
                    r"{ind}en: create the DWORD value AcceptlogEnabled = 1 under HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTPOP3S /v AcceptlogEnabled /t REG_DWORD /d 1 /f) and the folder {dir}{sep}receivepop3 by hand (mkdir {dir}{sep}receivepop3) → restart the EPSTPOP3S service"
                ),
            ],
        );
        kind(
            "  imap4log      off   no folder imap4log".into(),
            &[
                format!(
                    "{ind}ja: [E-Post Mail Control] → [ログ設定] → [IMAP4ログ] をオン → [適用] → EPSTIMAP4S を再起動"
                ),
                format!(
                    "{ind}en: E-Post Mail Control → ログ設定 (log settings) → check IMAP4ログ (IMAP4 log) → 適用 (Apply) → restart the EPSTIMAP4S service"
                ),
            ],
        );
        kind(
            "  receiveimap4  off   no folder receiveimap4".into(),
            &[
                format!(
                    r"{ind}ja: レジストリ HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S に DWORD 値 AcceptlogEnabled = 1 を作成 (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S /v AcceptlogEnabled /t REG_DWORD /d 1 /f)、フォルダ {dir}{sep}receiveimap4 を手動で作成 (mkdir {dir}{sep}receiveimap4) → EPSTIMAP4S を再起動"
                ),
                format!(
                    r"{ind}en: create the DWORD value AcceptlogEnabled = 1 under HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S (reg add HKLM\SYSTEM\CurrentControlSet\Services\EPSTIMAP4S /v AcceptlogEnabled /t REG_DWORD /d 1 /f) and the folder {dir}{sep}receiveimap4 by hand (mkdir {dir}{sep}receiveimap4) → restart the EPSTIMAP4S service"
                ),
            ],
        );
        kind(
            "  maildblog     off   no folder maildblog".into(),
            &[
                format!(
                    "{ind}ja: ガイドに記載なし (重複・初回メール検出の記録で、めったに使われない)。使わないなら何もしなくてよい"
                ),
                format!(
                    "{ind}en: not covered by the guide (the first-time / duplicate mail detection record, rarely used); nothing to do if you do not use it"
                ),
            ],
        );
        kind(
            "  viruslog      on    newest B0000000001.RCP (today)".into(),
            &[],
        );
        want.push("  note (receivelog, senderlog):".into());
        want.push(format!("{ind}ja: receivelog と senderlog は記録が膨大になりやすい: ディスクに注意。logclean.vbs の代わりに設定ファイルの [retention] (keep_days, action = \"gzip\" または \"delete\", schedule) を使う (全シンクに送信済みのファイルだけが対象)"));
        want.push(format!("{ind}en: receivelog and senderlog grow fast: watch the disk. [retention] in the config (keep_days, action = \"gzip\" or \"delete\", schedule) replaces logclean.vbs (it only touches files every sink has acknowledged)"));
        want.push("E-Post logs: 4 on, 2 stale, 1 quiet, 6 off".into());
        for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
            assert_eq!(got, want, "line {i} of\n{stdout}");
        }
        assert_eq!(lines.len(), want.len(), "{stdout}");
        return;
    }
    panic!("the date changed twice during the test");
}

/// A folder that is not E-Post's says what was expected; exit 1.
#[test]
fn a_folder_that_is_not_epost_says_what_was_expected() {
    let d = tempfile::tempdir().unwrap();
    put(d.path(), "logs/app.log");
    std::fs::create_dir_all(d.path().join("Documents")).unwrap();
    let out = check(&["--folder", d.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let want = format!(
        "  FAILED: `{}` does not look like an E-Post mail work folder (メール作業フォルダ): it has none of the log folders acceptlog, inlog, receivelog, outlog, outlocallog, faillog, senderlog, pop3log, receivepop3, imap4log, receiveimap4, maildblog, viruslog and no E-Post queue folder `incoming`. Expected <folder>\\<kind>\\<COMPUTERNAME>\\YYMMDD.log, e.g. C:\\mail\\inlog\\MAILSV01\\241130.log; give the folder E-Post Mail Control shows as メール作業フォルダ (registry HKLM\\SOFTWARE\\EMWAC\\IMS\\MailSpoolDir)",
        d.path().display()
    );
    assert_eq!(stdout.lines().nth(1), Some(want.as_str()), "{stdout}");
    assert!(stderr.contains("some checks failed"), "{stderr}");

    // a folder that does not exist
    let gone = d.path().join("nope");
    let out = check(&["--folder", gone.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().nth(1),
        Some(
            format!(
                "  FAILED: mail work folder `{}` does not exist",
                gone.display()
            )
            .as_str()
        ),
        "{stdout}"
    );
}

/// E-Post's queue folder alone: an E-Post folder with every log off (exit 0: a log that is
/// off is advice, not a failure).
#[test]
fn an_epost_folder_with_every_log_off() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("incoming")).unwrap();
    let out = check(&["--folder", d.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let offs = stdout
        .lines()
        .filter(|l| l.contains(" off   no folder "))
        .count();
    assert_eq!(offs, 13, "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("E-Post logs: 0 on, 0 stale, 0 quiet, 13 off")
    );
}

/// Without a config and without --folder there is nothing to detect off Windows: exit 2.
#[cfg(not(windows))]
#[test]
fn without_config_or_folder_it_is_a_usage_error() {
    let out = check(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "no mail work folder found: give --folder DIR (E-Post's メール作業フォルダ, e.g. C:\\mail) or --config FILE"
        ),
        "{stderr}"
    );
}

/// With a config, the survey covers its workdir, after the config's own checks.
#[test]
fn with_a_config_the_workdir_is_surveyed() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("mail");
    put(&m, &format!("inlog/MAILSV01/{}", day_name(0)));
    let cfg = d.path().join("shipper.toml");
    std::fs::write(
        &cfg,
        "[source]\nworkdir = 'mail'\nstate_dir = 'state'\n[[sink]]\ntype = \"file\"\npath = 'out.ndjson'\n",
    )
    .unwrap();
    let out = check(&["--config", cfg.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "E-Post mail work folder {} (the config's workdir):\n  acceptlog     off   no folder acceptlog\n",
            m.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("E-Post logs: 1 on, 0 stale, 0 quiet, 12 off\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("all well\n"), "{stdout}");
}

/// A workdir that is one kind's folder (or a host folder in it) is valid for the shipper:
/// the survey says why it covers nothing else, and the check does not fail for it.
#[test]
fn a_kind_folder_as_workdir_is_not_a_failure() {
    let d = tempfile::tempdir().unwrap();
    let host = d.path().join("mail/inlog/MAILSV01");
    put(
        &d.path().join("mail"),
        &format!("inlog/MAILSV01/{}", day_name(0)),
    );
    for dir in [host.parent().unwrap(), host.as_path()] {
        let out = check(&["--folder", dir.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert_eq!(
            stdout.lines().nth(1),
            Some(format!("  note: `{}` is the inlog folder (or a host folder in it), not the whole mail work folder: the other logs are not surveyed", dir.display()).as_str()),
            "{stdout}"
        );
    }
}
