//! Member QR images: signed image links and the PNGs behind them.
//!
//! `qrcode_url` is `/images/XCJ_<id>.png?<secs>.<micros>&exp=<unix>&sig=<mac>`:
//! the seed's shape, plus an expiry and an HMAC-SHA256 (truncated to 128
//! bits) of the member id and expiry, so the link works in a WeChat
//! `<image>` tag (no headers) while ids cannot be enumerated. The PNG holds
//! a code freshly signed at each request (see `zhima_domain::qr`); a member
//! who is not OK gets a crossed-out picture that is plainly not a key.

use std::io::Cursor;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use image::{ImageBuffer, ImageFormat, Luma, Rgb, RgbImage};
use sha2::{Digest, Sha256};
use zhima_app::members::Lookup;
use zhima_domain::ids::MemberId;
use zhima_domain::qr::{self, Keyring, Refusal, Signer};
use zhima_domain::Errno;

use crate::error::{ApiError, Operation};
use crate::AppState;

type HmacSha256 = Hmac<Sha256>;

/// What the QR features need.
#[derive(Debug)]
pub struct QrState {
    /// Signs the codes in the images.
    pub signer: Signer,
    /// The public keys a scanned code may be signed with (the signer's and
    /// older ones still in use).
    pub keyring: Keyring,
    /// The key of the image-link MACs (derived from the signing seed).
    image_key: [u8; 32],
    /// How long an image link works.
    pub image_link_ttl: chrono::Duration,
    /// How long a scan unlocks the door.
    pub entry: Duration,
    /// Within this time the same scanned text is answered again from memory,
    /// without a second log entry or door movement.
    pub replay_window: Duration,
}

impl QrState {
    /// The QR state from the signing seed and settings.
    pub fn new(
        signer: Signer,
        seed: &[u8; 32],
        keyring: Keyring,
        image_link_ttl: chrono::Duration,
        entry: Duration,
        replay_window: Duration,
    ) -> QrState {
        let image_key: [u8; 32] = Sha256::new()
            .chain_update(b"zhima image link v1\0")
            .chain_update(seed)
            .finalize()
            .into();
        QrState {
            signer,
            keyring,
            image_key,
            image_link_ttl,
            entry,
            replay_window,
        }
    }

    fn mac(&self, id: i64, exp: i64) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.image_key).ok()?;
        mac.update(format!("XCJ_{id}.png:{exp}").as_bytes());
        Some(mac)
    }

    /// The member's image link at `now`.
    pub fn image_url(&self, id: i64, now: DateTime<Utc>) -> String {
        let exp = (now + self.image_link_ttl).timestamp();
        let sig = self
            .mac(id, exp)
            .map(|m| URL_SAFE_NO_PAD.encode(&m.finalize().into_bytes()[..16]))
            .unwrap_or_default();
        format!(
            "/images/XCJ_{id}.png?{}.{:06}&exp={exp}&sig={sig}",
            now.timestamp(),
            now.timestamp_subsec_micros()
        )
    }

    /// Whether `exp` and `sig` make a valid, unexpired link for member `id`.
    fn link_is_valid(&self, id: i64, exp: &str, sig: &str, now: DateTime<Utc>) -> bool {
        let Ok(exp) = exp.parse::<i64>() else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        if now.timestamp() >= exp || sig.len() != 16 {
            return false;
        }
        self.mac(id, exp)
            .is_some_and(|m| m.verify_truncated_left(&sig).is_ok())
    }
}

/// Routes of the images.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/images/{file}").route(web::get().to(image)));
}

fn forbidden() -> ApiError {
    ApiError::new(
        Errno::Forbidden,
        "this image link is not valid or has expired; fetch the member again for a fresh one",
    )
}

/// `GET /images/XCJ_<id>.png?<time>&exp=<unix>&sig=<mac>`: no API key; the
/// link's MAC is the credential.
async fn image(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let id = path
        .strip_prefix("XCJ_")
        .and_then(|f| f.strip_suffix(".png"))
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(forbidden)?;
    let mut exp = None;
    let mut sig = None;
    for pair in req.query_string().split('&') {
        match pair.split_once('=') {
            Some(("exp", v)) => exp = Some(v),
            Some(("sig", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (Some(exp), Some(sig)) = (exp, sig) else {
        return Err(forbidden());
    };
    if !state.qr.link_is_valid(id, exp, sig, now) {
        return Err(forbidden());
    }
    let view = state
        .members
        .fetch(Lookup::Id(MemberId(id)), now)
        .await
        .map_err(ApiError::app(Operation::Read))?
        .ok_or_else(forbidden)?;
    let (record, validity) = (view.record, view.validity);
    let refusal = match (qr::admits(&validity), validity.valid_until) {
        (Ok(()), Some(until)) if until > now => {
            let code = qr::issue(&state.qr.signer, record.member.id, now, until);
            let png = qr_png(&code).map_err(|e| {
                tracing::error!(error = %e, "QR rendering failed");
                ApiError::new(Errno::Internal, Errno::Internal.meaning())
            })?;
            return Ok(HttpResponse::Ok()
                .content_type("image/png")
                .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
                .body(png));
        }
        (Err(refusal), _) => refusal,
        (Ok(()), _) => Refusal::MemberNotOk,
    };
    let png = not_a_key(refusal).map_err(|e| {
        tracing::error!(error = %e, "image rendering failed");
        ApiError::new(Errno::Internal, Errno::Internal.meaning())
    })?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Zhima-Refusal", refusal.reason()))
        .body(png))
}

fn encode_png(image: image::DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    Ok(out)
}

/// The code as a PNG QR image (error correction M, quiet zone, at least
/// 330 pixels square).
pub fn qr_png(code: &str) -> Result<Vec<u8>, String> {
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| e.to_string())?;
    let image: ImageBuffer<Luma<u8>, Vec<u8>> =
        qr.render::<Luma<u8>>().min_dimensions(330, 330).build();
    encode_png(image::DynamicImage::ImageLuma8(image)).map_err(|e| e.to_string())
}

/// 5×7 capital letters, one row per byte (the low five bits, left = 0x10).
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [30, 17, 17, 17, 17, 17, 30],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 10, 4, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        _ => [0; 7],
    }
}

fn draw_text(img: &mut RgbImage, text: &str, center_y: u32, scale: u32, color: Rgb<u8>) {
    let advance = 6 * scale;
    let width = advance * text.chars().count() as u32;
    let x0 = img.width().saturating_sub(width) / 2;
    let y0 = center_y.saturating_sub(7 * scale / 2);
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let x = x0 + i as u32 * advance + col * scale + dx;
                        let y = y0 + row as u32 * scale + dy;
                        if x < img.width() && y < img.height() {
                            img.put_pixel(x, y, color);
                        }
                    }
                }
            }
        }
    }
}

/// The short words drawn on a refused member's image.
fn refusal_words(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::MemberDeactivated => "DEACTIVATED",
        Refusal::EntryDaysUsedUp => "NO ENTRY DAYS LEFT",
        _ => "NO VALID MEMBERSHIP",
    }
}

/// A crossed-out picture with the reason: plainly not a key, and no QR code
/// at all in it.
pub fn not_a_key(refusal: Refusal) -> Result<Vec<u8>, image::ImageError> {
    let (w, h) = (400u32, 400u32);
    let red = Rgb([200, 30, 30]);
    let mut img = RgbImage::from_pixel(w, h, Rgb([245, 245, 245]));
    for y in 0..h {
        for x in 0..w {
            let border = x < 12 || y < 12 || x >= w - 12 || y >= h - 12;
            let diagonal = x.abs_diff(y) < 10 || (x + y).abs_diff(w - 1) < 10;
            if border || diagonal {
                img.put_pixel(x, y, red);
            }
        }
    }
    for y in 140..260 {
        for x in 20..(w - 20) {
            img.put_pixel(x, y, Rgb([255, 255, 255]));
        }
    }
    draw_text(&mut img, "NOT A KEY", 170, 5, red);
    draw_text(&mut img, refusal_words(refusal), 230, 3, Rgb([40, 40, 40]));
    encode_png(image::DynamicImage::ImageRgb8(img))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhima_domain::qr::KeyId;

    fn state() -> QrState {
        let seed = [3u8; 32];
        let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &seed);
        let mut keyring = Keyring::new();
        keyring.insert(signer.key_id(), signer.verifying_key());
        QrState::new(
            signer,
            &seed,
            keyring,
            chrono::Duration::days(365),
            Duration::from_secs(3),
            Duration::from_secs(5),
        )
    }

    fn decode(png: &[u8]) -> Vec<String> {
        let img = image::load_from_memory(png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        prepared
            .detect_grids()
            .iter()
            .filter_map(|g| g.decode().ok().map(|(_, text)| text))
            .collect()
    }

    #[test]
    fn the_png_decodes_back_to_the_code() {
        let s = state();
        let now = DateTime::from_timestamp(1_520_856_000, 0).unwrap();
        let code = qr::issue(
            &s.signer,
            MemberId(42),
            now,
            now + chrono::Duration::days(30),
        );
        let png = qr_png(&code).unwrap();
        assert_eq!(decode(&png), std::slice::from_ref(&code));
        assert!(qr::verify(decode(&png)[0].as_bytes(), &s.keyring, now).is_ok());
    }

    #[test]
    fn the_refused_picture_holds_no_code() {
        for r in [
            Refusal::MemberNotOk,
            Refusal::MemberDeactivated,
            Refusal::EntryDaysUsedUp,
        ] {
            let png = not_a_key(r).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            assert!(decode(&png).is_empty());
        }
    }

    #[test]
    fn image_links_are_signed_per_member_and_expire() {
        let s = state();
        let now = DateTime::from_timestamp(1_520_856_000, 0).unwrap();
        let url = s.image_url(7, now);
        assert!(
            url.starts_with("/images/XCJ_7.png?1520856000.000000&exp="),
            "{url}"
        );
        let query = url.split_once('?').unwrap().1;
        let get = |k: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_owned()
        };
        let (exp, sig) = (get("exp"), get("sig"));
        assert!(s.link_is_valid(7, &exp, &sig, now));
        assert!(!s.link_is_valid(8, &exp, &sig, now), "another member");
        let later: i64 = exp.parse::<i64>().unwrap() + 1;
        assert!(
            !s.link_is_valid(7, &later.to_string(), &sig, now),
            "another expiry"
        );
        let at_expiry = DateTime::from_timestamp(exp.parse().unwrap(), 0).unwrap();
        assert!(!s.link_is_valid(7, &exp, &sig, at_expiry), "expired");
        let mut forged = sig.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert!(!s.link_is_valid(7, &exp, &String::from_utf8(forged).unwrap(), now));
        assert!(!s.link_is_valid(7, &exp, "", now));
        // the seed's example link keeps its shape
        let t = DateTime::from_timestamp(1523680364, 626_984_400).unwrap();
        assert!(s
            .image_url(123574, t)
            .starts_with("/images/XCJ_123574.png?1523680364.626984&exp="));
    }
}
