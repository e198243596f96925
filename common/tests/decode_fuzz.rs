//! Property tests: the frame codec and the payload decoder never panic, on
//! arbitrary bytes or on real frames with random damage, and what they
//! accept re-encodes to something they accept again.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use toycoin_common::frame::FrameCodec;
use toycoin_common::message::Message;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/toycoin/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn samples() -> Vec<Vec<u8>> {
    vec![
        fixture("live/0000-TXN.bin"),
        fixture("live/0006-TXN.bin"),
        fixture("live/0011-BLOC.bin"),
        fixture("generated/txn-05.TXN.bin"),
    ]
}

fn check_decode(payload: &[u8]) {
    if let Ok(message) = Message::decode(payload) {
        let again = Message::decode(&message.encode()).expect("re-encoded payload decodes");
        assert_eq!(again, message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn payload_decoder_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_decode(&bytes);
    }

    #[test]
    fn payload_decoder_survives_tagged_json_like_noise(
        tag in prop_oneof![Just(&b"TXN "[..]), Just(&b"BLOC"[..])],
        body in "[\\[\\]{}\",:0-9a-zA-Z+/= \\\\-]{0,300}",
    ) {
        let mut payload = tag.to_vec();
        payload.extend_from_slice(body.as_bytes());
        check_decode(&payload);
    }

    #[test]
    fn payload_decoder_survives_damaged_real_frames(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut payload = samples().swap_remove(which);
        for (pos, byte, op) in edits {
            if payload.is_empty() { break; }
            let at = pos % payload.len();
            match op {
                0 => payload[at] = byte,
                1 => { payload.remove(at); }
                _ => payload.insert(at, byte),
            }
        }
        check_decode(&payload);
    }

    #[test]
    fn frame_decoder_survives_arbitrary_streams(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
        max in 0usize..128,
    ) {
        let mut codec = FrameCodec::new(max);
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => prop_assert!(frame.len() <= max),
                    Ok(None) => break,
                    Err(_) => return Ok(()), // a connection would be dropped here
                }
            }
        }
        let _ = codec.decode_eof(&mut buf);
    }
}
