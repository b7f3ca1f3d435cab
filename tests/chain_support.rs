//! The local-chain harness itself: anvil starts on its own port and stops on drop,
//! the Test 0xBTC token deploys and behaves as an 8-decimal ERC-20, and snapshots,
//! manual mining and reorgs do what the payment tests rely on.

#[path = "support/chain.rs"]
mod chain;

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use chain::{address_topic, random_address, transfer_topic, Anvil, ITestToken, ONE_TOKEN};
use serde_json::json;

#[tokio::test]
async fn deploy_mint_transfer_and_transfer_log() {
    let anvil = Anvil::start(31337);
    assert!(
        anvil.rpc_url().starts_with("http://127.0.0.1:"),
        "{}",
        anvil.rpc_url()
    );
    assert_eq!(anvil.rpc_chain_id().await, 31337);
    // the default mnemonic's first account
    let a0: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        .parse()
        .unwrap();
    assert_eq!(anvil.dev_account(0).await, a0);
    assert_eq!(anvil.dev_accounts().await.len(), chain::DEV_ACCOUNTS);
    assert_eq!(
        anvil.dev_private_key(0),
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    );

    let token = anvil.deploy_token().await;
    let payer = anvil.dev_account(1).await;
    anvil.mint(token, payer, 100 * ONE_TOKEN).await;
    assert_eq!(anvil.balance_of(token, payer).await, 10_000_000_000);
    assert_eq!(anvil.total_supply(token).await, 100 * ONE_TOKEN);

    let merchant = random_address();
    let before = anvil.block_number().await;
    let hash = anvil.transfer(token, 1, merchant, ONE_TOKEN / 2).await;
    assert_eq!(
        anvil.block_number().await,
        before + 1,
        "automine: one block per tx"
    );
    assert_eq!(anvil.balance_of(token, merchant).await, 50_000_000);
    assert_eq!(anvil.balance_of(token, payer).await, 9_950_000_000);
    assert_eq!(anvil.total_supply(token).await, 100 * ONE_TOKEN);

    // eth_getLogs finds exactly that Transfer, with the right topics and data.
    let filter = json!({
        "address": token,
        "fromBlock": format!("{:#x}", before + 1),
        "toBlock": "latest",
        "topics": [transfer_topic()],
    });
    let logs = anvil.rpc("eth_getLogs", json!([filter])).await;
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert_eq!(chain::parse_b256(&log["transactionHash"]), hash);
    assert_eq!(
        log["address"].as_str().unwrap().parse::<Address>().unwrap(),
        token
    );
    let topics: Vec<_> = log["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(chain::parse_b256)
        .collect();
    assert_eq!(
        topics,
        vec![
            transfer_topic(),
            address_topic(payer),
            address_topic(merchant)
        ]
    );
    let data = chain::parse_bytes(&log["data"]);
    assert_eq!(U256::from_be_slice(&data), U256::from(50_000_000u64));
    assert_eq!(chain::parse_u64(&log["blockNumber"]), before + 1);

    // the helper's filter on the recipient agrees; a stranger has no transfers
    assert_eq!(anvil.transfer_logs(token, 0, Some(merchant)).await.len(), 1);
    assert!(anvil
        .transfer_logs(token, 0, Some(random_address()))
        .await
        .is_empty());
    // mint + transfer
    assert_eq!(anvil.transfer_logs(token, 0, None).await.len(), 2);
}

#[tokio::test]
async fn token_is_an_8_decimal_erc20_with_owner_only_mint() {
    let anvil = Anvil::start(8453);
    let token = anvil.deploy_token().await;
    let call = |data: Vec<u8>| anvil.call(token, data);

    let name = ITestToken::nameCall {}.abi_encode();
    assert_eq!(
        ITestToken::nameCall::abi_decode_returns(&call(name).await).unwrap(),
        "Test 0xBTC"
    );
    let symbol = ITestToken::symbolCall {}.abi_encode();
    assert_eq!(
        ITestToken::symbolCall::abi_decode_returns(&call(symbol).await).unwrap(),
        "0xBTC"
    );
    let decimals = ITestToken::decimalsCall {}.abi_encode();
    assert_eq!(
        ITestToken::decimalsCall::abi_decode_returns(&call(decimals).await).unwrap(),
        8
    );
    let owner = ITestToken::ownerCall {}.abi_encode();
    assert_eq!(
        ITestToken::ownerCall::abi_decode_returns(&call(owner).await).unwrap(),
        anvil.dev_account(0).await
    );

    let (a1, a2, a3) = (
        anvil.dev_account(1).await,
        anvil.dev_account(2).await,
        anvil.dev_account(3).await,
    );
    // only the owner mints
    let mint = ITestToken::mintCall {
        to: a1,
        value: U256::from(ONE_TOKEN),
    }
    .abi_encode();
    let err = anvil.try_send_call(a1, token, mint).await.unwrap_err();
    assert!(err.message.contains("not owner"), "{err}");
    // with an explicit gas limit it is mined anyway, as a failed transaction
    let mint = ITestToken::mintCall {
        to: a1,
        value: U256::from(ONE_TOKEN),
    }
    .abi_encode();
    let tx = json!({"from": a1, "to": token, "data": chain::hex_data(&mint), "gas": "0x30000"});
    let h = anvil.try_send_transaction(tx).await.unwrap();
    assert_eq!(anvil.wait_receipt(h).await["status"], json!("0x0"));
    assert_eq!(anvil.total_supply(token).await, 0);
    anvil.mint(token, a1, 3 * ONE_TOKEN).await;

    // no overdraft
    let err = anvil
        .try_transfer(token, 1, a2, 3 * ONE_TOKEN + 1)
        .await
        .unwrap_err();
    assert!(err.message.contains("revert"), "{err}");
    // no transfer to the zero address
    assert!(anvil
        .try_transfer(token, 1, Address::ZERO, 1)
        .await
        .is_err());

    // approve / allowance / transferFrom
    let approve = ITestToken::approveCall {
        spender: a2,
        value: U256::from(ONE_TOKEN),
    }
    .abi_encode();
    let h = anvil.try_send_call(a1, token, approve).await.unwrap();
    let r = anvil.wait_success(h).await;
    assert_eq!(
        chain::parse_b256(&r["logs"][0]["topics"][0]),
        chain::approval_topic()
    );
    let allowance = ITestToken::allowanceCall {
        holder: a1,
        spender: a2,
    }
    .abi_encode();
    let got =
        ITestToken::allowanceCall::abi_decode_returns(&call(allowance.clone()).await).unwrap();
    assert_eq!(got, U256::from(ONE_TOKEN));

    let pull = |value: u128| {
        ITestToken::transferFromCall {
            from: a1,
            to: a3,
            value: U256::from(value),
        }
        .abi_encode()
    };
    // more than allowed fails, then exactly the allowance in two steps succeeds
    assert!(anvil
        .try_send_call(a2, token, pull(ONE_TOKEN + 1))
        .await
        .is_err());
    let h = anvil
        .try_send_call(a2, token, pull(ONE_TOKEN / 4))
        .await
        .unwrap();
    anvil.wait_success(h).await;
    let h = anvil
        .try_send_call(a2, token, pull(3 * ONE_TOKEN / 4))
        .await
        .unwrap();
    anvil.wait_success(h).await;
    assert!(
        anvil.try_send_call(a2, token, pull(1)).await.is_err(),
        "allowance used up"
    );
    let got = ITestToken::allowanceCall::abi_decode_returns(&call(allowance).await).unwrap();
    assert_eq!(got, U256::ZERO);
    assert_eq!(anvil.balance_of(token, a1).await, 2 * ONE_TOKEN);
    assert_eq!(anvil.balance_of(token, a3).await, ONE_TOKEN);
    assert_eq!(anvil.total_supply(token).await, 3 * ONE_TOKEN);
}

#[tokio::test]
async fn snapshot_and_revert_undo_a_transfer() {
    let anvil = Anvil::start(1337);
    let token = anvil.deploy_token().await;
    let payer = anvil.dev_account(1).await;
    anvil.mint(token, payer, 100 * ONE_TOKEN).await;
    let merchant = random_address();

    let snap = anvil.snapshot().await;
    let height = anvil.block_number().await;
    let hash = anvil.transfer(token, 1, merchant, ONE_TOKEN / 2).await;
    assert_eq!(anvil.balance_of(token, merchant).await, ONE_TOKEN / 2);

    anvil.revert(&snap).await;
    assert_eq!(anvil.block_number().await, height);
    assert_eq!(anvil.balance_of(token, merchant).await, 0);
    assert_eq!(anvil.balance_of(token, payer).await, 100 * ONE_TOKEN);
    assert!(
        anvil.receipt(hash).await.is_none(),
        "the reverted transfer is gone"
    );

    // a snapshot is used up by reverting to it
    let used = anvil.try_rpc("evm_revert", json!([snap])).await.unwrap();
    assert_eq!(used, json!(false));
    // and the chain goes on normally after a revert
    anvil.transfer(token, 1, merchant, 1).await;
    assert_eq!(anvil.balance_of(token, merchant).await, 1);
}

#[tokio::test]
async fn with_automine_off_a_transfer_is_pending_until_mined() {
    let anvil = Anvil::start(31337);
    let token = anvil.deploy_token().await;
    let payer = anvil.dev_account(1).await;
    anvil.mint(token, payer, 10 * ONE_TOKEN).await;
    let merchant = random_address();

    anvil.set_automine(false).await;
    assert!(!anvil.automine().await);
    let height = anvil.block_number().await;
    let hash = anvil.transfer(token, 1, merchant, ONE_TOKEN / 2).await;

    assert!(
        anvil.receipt(hash).await.is_none(),
        "pending: no receipt yet"
    );
    let tx = anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert!(tx["blockNumber"].is_null(), "pending tx has no block: {tx}");
    assert_eq!(anvil.block_number().await, height);
    assert_eq!(anvil.balance_of(token, merchant).await, 0);

    anvil.mine(1).await;
    assert_eq!(anvil.block_number().await, height + 1);
    let r = anvil.receipt(hash).await.expect("mined");
    assert_eq!(r["status"], json!("0x1"));
    assert_eq!(chain::parse_u64(&r["blockNumber"]), height + 1);
    assert_eq!(anvil.balance_of(token, merchant).await, ONE_TOKEN / 2);

    // mine(n) adds n blocks (confirmations), and automine comes back on
    anvil.mine(5).await;
    assert_eq!(anvil.block_number().await, height + 6);
    anvil.set_automine(true).await;
    anvil.transfer(token, 1, merchant, 1).await;
    assert_eq!(anvil.block_number().await, height + 7);
}

#[tokio::test]
async fn a_reorg_drops_a_mined_transfer() {
    let anvil = Anvil::start(31337);
    let token = anvil.deploy_token().await;
    let payer = anvil.dev_account(1).await;
    anvil.mint(token, payer, 10 * ONE_TOKEN).await;
    let merchant = random_address();

    let hash = anvil.transfer(token, 1, merchant, ONE_TOKEN).await;
    let height = anvil.block_number().await;
    let old_tip = anvil.block(None).await["hash"].clone();
    assert_eq!(anvil.balance_of(token, merchant).await, ONE_TOKEN);
    assert_eq!(anvil.transfer_logs(token, 0, Some(merchant)).await.len(), 1);

    anvil.reorg(1).await;
    assert_eq!(anvil.block_number().await, height, "same height");
    assert_ne!(anvil.block(None).await["hash"], old_tip, "new tip");
    assert!(anvil.receipt(hash).await.is_none(), "transfer dropped");
    assert_eq!(anvil.balance_of(token, merchant).await, 0);
    assert!(anvil
        .transfer_logs(token, 0, Some(merchant))
        .await
        .is_empty());

    // reorg_with re-includes a transfer in the replacement blocks
    let data = ITestToken::transferCall {
        to: merchant,
        value: U256::from(7u64),
    }
    .abi_encode();
    let tx = json!({"from": payer, "to": token, "data": chain::hex_data(&data), "gas": "0x30000"});
    anvil.reorg_with(1, vec![(tx, 0)]).await;
    assert_eq!(anvil.block_number().await, height);
    assert_eq!(anvil.balance_of(token, merchant).await, 7);
    let logs = anvil.transfer_logs(token, 0, Some(merchant)).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(chain::parse_u64(&logs[0]["blockNumber"]), height);
}

#[tokio::test]
async fn dropping_anvil_kills_it() {
    let anvil = Anvil::start(31337);
    let pid = anvil.pid();
    let url = anvil.rpc_url().to_string();
    assert_eq!(anvil.block_number().await, 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(anvil);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "anvil {pid} still running"
    );
    let port_free = std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err();
    assert!(port_free, "nothing listens on {url} any more");
}

#[tokio::test]
async fn anvils_run_side_by_side_on_their_own_ports() {
    let (a, b) = (Anvil::start(1), Anvil::start(2));
    assert_ne!(a.rpc_url(), b.rpc_url());
    assert_eq!((a.rpc_chain_id().await, b.rpc_chain_id().await), (1, 2));
    a.mine(3).await;
    assert_eq!((a.block_number().await, b.block_number().await), (3, 0));
}
