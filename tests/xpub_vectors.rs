//! Watch-only derivation agrees with private-key derivation on the standard test
//! mnemonic (the anvil/hardhat dev accounts), and private keys are refused.

use alloy::primitives::Address;
use coins_bip32::enc::{MainnetEncoder, XKeyEncoder};
use coins_bip32::primitives::Hint;
use coins_bip32::xkeys::XPriv;
use coins_bip39::{English, Mnemonic};
use tollgate::chain::xpub::{AccountXpub, XpubError, XpubNetwork};

const MNEMONIC: &str = "test test test test test test test test test test test junk";
const CHAIN_PATH: &str = "m/44'/60'/0'/0";

/// The first dev accounts of the test mnemonic, EIP-55 exact.
const KNOWN: [&str; 3] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
];

/// Root key with the plain BIP32 (`xpub`/`xprv`) version hint.
fn root() -> XPriv {
    let mnemonic: Mnemonic<English> = Mnemonic::new_from_phrase(MNEMONIC).unwrap();
    let seed = mnemonic.to_seed(None).unwrap();
    XPriv::root_from_seed(&seed, Some(Hint::Legacy)).unwrap()
}

/// Address of m/44'/60'/0'/0/i derived from the private key.
fn private_address(root: &XPriv, i: u32) -> String {
    let child = root
        .derive_path(format!("{CHAIN_PATH}/{i}").as_str())
        .unwrap();
    let signing_key: &coins_bip32::ecdsa::SigningKey = child.as_ref();
    Address::from_private_key(signing_key).to_checksum(None)
}

#[test]
fn private_derivation_gives_the_known_first_account() {
    assert_eq!(private_address(&root(), 0), KNOWN[0]);
}

#[test]
fn xpub_children_match_private_derivation() {
    let root = root();
    let chain_xprv = root.derive_path(CHAIN_PATH).unwrap();
    let xpub_str = MainnetEncoder::xpub_to_base58(&chain_xprv.verify_key()).unwrap();
    assert!(xpub_str.starts_with("xpub"), "{xpub_str}");
    println!("xpub of {CHAIN_PATH}: {xpub_str}");

    let account = AccountXpub::parse(&xpub_str).unwrap();
    assert_eq!(account.as_str(), xpub_str, "round trip");
    assert_eq!(account.to_string(), xpub_str, "round trip via Display");
    assert_eq!(account.network(), XpubNetwork::Mainnet);
    assert_eq!(account.depth(), 4);

    for i in 0..5 {
        let watch_only = account.address(i).unwrap();
        assert_eq!(watch_only, private_address(&root, i), "child {i}");
        assert_eq!(
            account.address_checked(i).unwrap().to_checksum(None),
            watch_only
        );
    }
    for (i, known) in KNOWN.iter().enumerate() {
        assert_eq!(account.address(i as u32).unwrap(), *known, "child {i}");
    }

    // The matching private extended key is refused, and not echoed back.
    let xprv_str = MainnetEncoder::xpriv_to_base58(&chain_xprv).unwrap();
    assert!(xprv_str.starts_with("xprv"), "xprv encoding");
    let err = AccountXpub::parse(&xprv_str).unwrap_err();
    assert!(matches!(err, XpubError::PrivateKey(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("never accepts private keys"), "{msg}");
    assert!(!msg.contains(&xprv_str));
}
