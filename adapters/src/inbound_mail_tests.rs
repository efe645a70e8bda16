use super::*;

#[test]
fn a_signature_is_the_hex_hmac_of_timestamp_and_token() {
    // Computed apart from this code (Python's hmac over the same strings).
    let key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
    let (ts, token) = (
        "1529006854",
        "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    );
    let sig = "b63c0701c4f4b614f272106a1b367c5c3369bcdca664ae73ebd52787e45eef07";
    assert!(signature_valid(key, ts, token, sig));
    assert!(signature_valid(key, ts, token, &sig.to_uppercase()));
    assert!(!signature_valid(key, "1529006855", token, sig));
    assert!(!signature_valid("another-key", ts, token, sig));
    assert!(!signature_valid(key, ts, token, ""));
    assert!(!signature_valid(key, ts, token, &sig[..63]));
}

const REPLY: &str = "From: \"Ana Lima\" <Ana@Example.TEST>\r\n\
To: reply+abc@reply.acme.test\r\n\
Subject: Re: Your quote\r\n\
Message-ID: <CAF1234@mail.example.test>\r\n\
Content-Type: multipart/alternative; boundary=b1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Yes, call me at 3pm =E2=80=94 thanks!\r\n\
\r\n\
On Mon, 7 Dec 2026 at 10:00, Acme <sales@acme.test> wrote:\r\n\
> Hi Ana, when can we call?\r\n\
--b1\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>Yes, call me at 3pm</p>\r\n\
--b1--\r\n";

#[test]
fn a_reply_gives_its_author_subject_id_and_new_words_only() {
    let mail = read(REPLY.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mail.from, "ana@example.test");
    assert_eq!(mail.from_name.as_deref(), Some("Ana Lima"));
    assert_eq!(mail.subject, "Re: Your quote");
    assert_eq!(
        mail.message_id.as_deref(),
        Some("CAF1234@mail.example.test")
    );
    assert_eq!(mail.text, "Yes, call me at 3pm \u{2014} thanks!");
    assert!(!mail.automatic);
    assert_eq!(mail.report, None);
}

#[test]
fn html_only_mail_gives_its_text() {
    let raw = "From: bo@x.test\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n\
        <div>Call me&nbsp;<b>today</b></div><blockquote>old &amp; quoted</blockquote>";
    let mail = read(raw.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mail.text, "Call me today\n\nold & quoted");
}

#[test]
fn an_out_of_office_is_automatic_and_a_message_without_from_is_refused() {
    let raw = "From: bo@x.test\r\nAuto-Submitted: auto-replied\r\nSubject: Away\r\n\r\nback monday";
    assert!(read(raw.as_bytes()).map(|m| m.automatic).unwrap_or(false));
    let raw = "From: bo@x.test\r\nAuto-Submitted: no\r\n\r\nhello";
    assert!(!read(raw.as_bytes()).map(|m| m.automatic).unwrap_or(true));
    assert_eq!(
        read(b"Subject: x\r\n\r\nbody"),
        Err(MailError::NoFrom),
        "no From"
    );
    assert_eq!(
        read(b"From: not an address\r\n\r\nbody"),
        Err(MailError::NoFrom)
    );
}

const DSN: &str = "From: MAILER-DAEMON@mx.example.test\r\n\
To: sales@acme.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r1\"\r\n\
\r\n\
--r1\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--r1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.test\r\n\
\r\n\
Final-Recipient: rfc822; Gone@Example.TEST\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.test>:\r\n\
\tRecipient address rejected: User unknown\r\n\
--r1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: Acme <sales@acme.test>\r\n\
To: gone@example.test\r\n\
Reply-To: reply+tok@reply.acme.test\r\n\
Subject: Your quote\r\n\
--r1--\r\n";

#[test]
fn a_delivery_status_notification_names_the_recipient_status_and_our_reply_address() {
    let mail = read(DSN.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let report = mail.report.clone().unwrap_or_else(|| panic!("no report"));
    assert_eq!(
        report,
        Report::Delivery {
            recipient: "gone@example.test".into(),
            action: "failed".into(),
            status: "5.1.1".into(),
            diagnostic: Some(
                "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown".into()
            ),
        }
    );
    assert!(report.is_permanent_failure());
    assert!(mail.automatic);
    assert_eq!(
        mail.original_reply_to.as_deref(),
        Some("reply+tok@reply.acme.test")
    );
    let delayed = DSN
        .replace("Action: failed", "Action: delayed")
        .replace("5.1.1", "4.4.1");
    let later = read(delayed.as_bytes()).ok().and_then(|m| m.report);
    assert!(later.is_some_and(|r| !r.is_permanent_failure()));
}

#[test]
fn a_complaint_names_the_recipient_from_the_report_or_the_message_it_carries() {
    let arf = "From: fbl@isp.test\r\n\
Subject: complaint\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=f\r\n\
\r\n\
--f\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is an email abuse report.\r\n\
--f\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
User-Agent: SomeISP/1.0\r\n\
Version: 1\r\n\
--f\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: sales@acme.test\r\n\
To: Ana <ana@example.test>\r\n\
Subject: Your quote\r\n\
\r\n\
Hi Ana\r\n\
--f--\r\n";
    let mail = read(arf.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mail.report,
        Some(Report::Complaint {
            recipient: Some("ana@example.test".into()),
            feedback_type: "abuse".into()
        })
    );
    let named = arf.replace(
        "Version: 1\r\n",
        "Version: 1\r\nOriginal-Rcpt-To: rfc822; ana+x@example.test\r\n",
    );
    let mail = read(named.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(mail.report, Some(Report::Complaint { recipient: Some(r), .. }) if r == "ana+x@example.test")
    );
}

#[test]
fn hostile_mime_is_read_or_refused_never_a_panic() {
    let deep: String = (0..200)
        .map(|i| format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"))
        .collect();
    let raw = format!("From: a@b.test\r\n{deep}");
    let _ = read(raw.as_bytes());
    for raw in [
        &b""[..],
        b"\xff\xfe",
        b"From:\r\n\r\n",
        b"From: <>\r\n",
        b"From: <a\0b@x.test>\r\n\r\nhi",
    ] {
        assert!(read(raw).is_err(), "{raw:?}");
    }
    let long = format!("From: a@b.test\r\n\r\n{}", "x".repeat(MAX_TEXT_CHARS * 2));
    assert_eq!(
        read(long.as_bytes()).map(|m| m.text.chars().count()),
        Ok(MAX_TEXT_CHARS)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever bytes a relay posts, reading them answers (a message or a refusal), never a
    /// panic, and what it keeps is bounded and free of NUL in the address.
    #[test]
    fn any_bytes_are_read_or_refused(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        if let Ok(mail) = read(&raw) {
            proptest::prop_assert!(mail.text.chars().count() <= MAX_TEXT_CHARS);
            proptest::prop_assert!(!mail.from.contains('\0'));
        }
    }

    /// Messages shaped like mail (headers, parts, reports) with hostile values.
    #[test]
    fn mail_shaped_input_is_read_or_refused(
        from in "[ -~]{0,40}",
        subject in "\\PC{0,60}",
        ctype in proptest::sample::select(vec!["text/plain", "text/html", "multipart/report; report-type=delivery-status; boundary=b", "multipart/mixed; boundary=b", "message/rfc822", ""]),
        body in "\\PC{0,400}",
    ) {
        let raw = format!("From: {from}\r\nSubject: {subject}\r\nContent-Type: {ctype}\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n{body}\r\n--b--\r\n");
        let _ = read(raw.as_bytes());
    }
}
