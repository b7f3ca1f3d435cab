//! Dev-chain helper for the demo: deploys the test 0xBTC token to a local anvil
//! and pays from its funded dev accounts (which anvil keeps unlocked). Never for
//! real chains: it relies on `eth_sendTransaction` from unlocked accounts.
//!
//! ```text
//! cargo run --example devchain -- deploy RPC_URL            # prints the token address
//! cargo run --example devchain -- pay RPC_URL TOKEN TO 0.5   # ERC-20 transfer from dev account 1
//! ```

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use tollgate::amount::Amount;

alloy::sol! {
    function mint(address to, uint256 value);
    function transfer(address to, uint256 value) returns (bool);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["deploy", rpc] => deploy(rpc).await,
        ["pay", rpc, token, to, amount] => pay(rpc, token, to, amount).await,
        _ => Err("usage: devchain deploy RPC_URL | devchain pay RPC_URL TOKEN TO AMOUNT".into()),
    };
    if let Err(e) = result {
        eprintln!("devchain: {e}");
        std::process::exit(1);
    }
}

async fn send(
    rpc: &str,
    tx: TransactionRequest,
) -> Result<alloy::rpc::types::TransactionReceipt, String> {
    let provider = ProviderBuilder::new().connect_http(rpc.parse().map_err(|e| format!("{e}"))?);
    let pending = provider
        .send_transaction(tx)
        .await
        .map_err(|e| e.to_string())?;
    let receipt = pending.get_receipt().await.map_err(|e| e.to_string())?;
    if !receipt.status() {
        return Err(format!("transaction {} reverted", receipt.transaction_hash));
    }
    Ok(receipt)
}

async fn account(rpc: &str, i: usize) -> Result<Address, String> {
    let provider = ProviderBuilder::new().connect_http(rpc.parse().map_err(|e| format!("{e}"))?);
    let accounts = provider.get_accounts().await.map_err(|e| e.to_string())?;
    accounts
        .get(i)
        .copied()
        .ok_or_else(|| format!("no dev account {i}"))
}

async fn deploy(rpc: &str) -> Result<(), String> {
    let artifact: serde_json::Value =
        serde_json::from_str(include_str!("../chain/artifacts/TestToken.json"))
            .map_err(|e| e.to_string())?;
    let code = artifact["bytecode"]
        .as_str()
        .ok_or("artifact has no bytecode")?;
    let code = hex::decode(code.trim_start_matches("0x")).map_err(|e| e.to_string())?;
    let owner = account(rpc, 0).await?;
    let tx = TransactionRequest::default()
        .from(owner)
        .with_deploy_code(Bytes::from(code));
    let receipt = send(rpc, tx).await?;
    let token = receipt.contract_address.ok_or("no contract address")?;
    let payer = account(rpc, 1).await?;
    let mint = mintCall {
        to: payer,
        value: U256::from(1_000u128 * 100_000_000),
    }
    .abi_encode();
    send(
        rpc,
        TransactionRequest::default()
            .from(owner)
            .to(token)
            .input(mint.into()),
    )
    .await?;
    println!("{token:#x}");
    Ok(())
}

async fn pay(rpc: &str, token: &str, to: &str, amount: &str) -> Result<(), String> {
    let token: Address = token.parse().map_err(|e| format!("token: {e}"))?;
    let to: Address = to.parse().map_err(|e| format!("to: {e}"))?;
    let units = Amount::parse_decimal(amount, 8).map_err(|e| format!("amount: {e}"))?;
    let payer = account(rpc, 1).await?;
    let data = transferCall {
        to,
        value: U256::from(units.0),
    }
    .abi_encode();
    let receipt = send(
        rpc,
        TransactionRequest::default()
            .from(payer)
            .to(token)
            .input(data.into()),
    )
    .await?;
    println!(
        "paid {amount} 0xBTC to {to:#x} in tx {:#x}",
        receipt.transaction_hash
    );
    Ok(())
}
