//! A Member API request body, from bytes to the decoded request: the JSON
//! reader, then the decoders of `POST member/new`, `PATCH op:update` and
//! `PATCH op:add`. Never a panic; a refusal is always errno 1002.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zhima_domain::plan::Plans;
use zhima_domain::time::DEFAULT_TIMEZONE;
use zhima_domain::Errno;
use zhima_http::{body, wire};

fuzz_target!(|data: &[u8]| {
    let obj = match body::parse_object(data) {
        Ok(obj) => obj,
        Err(e) => {
            assert_eq!(e.errno, Errno::BadRequest);
            return;
        }
    };
    let plans = Plans::standard();
    let tz = DEFAULT_TIMEZONE;
    if let Err(e) = wire::new_member(&obj, &plans, tz) {
        assert_eq!(e.errno, Errno::BadRequest, "{}", e.message);
    }
    if let Err(e) = wire::update_request(&obj) {
        assert_eq!(e.errno, Errno::BadRequest, "{}", e.message);
    }
    if let Err(e) = wire::payment(&obj, "", &plans, tz) {
        assert_eq!(e.errno, Errno::BadRequest, "{}", e.message);
    }
});
