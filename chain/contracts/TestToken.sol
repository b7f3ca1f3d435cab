// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Test 0xBTC
/// @notice A minimal ERC-20 with 8 decimals for tollgate's local-chain tests.
///         The deployer is the owner and the only account that can mint
///         (`mint`, and `airdrop` for many recipients at once).
///         Nothing here is meant for a real network.
contract TestToken {
    string public constant name = "Test 0xBTC";
    string public constant symbol = "0xBTC";
    uint8 public constant decimals = 8;

    address public immutable owner;
    uint256 public totalSupply;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor() {
        owner = msg.sender;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "TestToken: allowance exceeded");
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _move(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external {
        require(msg.sender == owner, "TestToken: not owner");
        require(to != address(0), "TestToken: mint to zero address");
        totalSupply += value; // checked: reverts on overflow
        unchecked {
            // cannot overflow: every balance is at most totalSupply
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
    }

    /// @notice Mints `value` to each address in `to` (owner only), emitting one
    ///         standard `Transfer(address(0), to[i], value)` per recipient, in order.
    ///         For filling a local chain with many Transfer logs quickly.
    function airdrop(address[] calldata to, uint256 value) external {
        require(msg.sender == owner, "TestToken: not owner");
        uint256 n = to.length;
        totalSupply += value * n; // checked: reverts on overflow
        for (uint256 i = 0; i < n; ) {
            address a = to[i];
            require(a != address(0), "TestToken: mint to zero address");
            unchecked {
                // cannot overflow: every balance is at most totalSupply
                balanceOf[a] += value;
                ++i;
            }
            emit Transfer(address(0), a, value);
        }
    }

    function _move(address from, address to, uint256 value) private {
        require(to != address(0), "TestToken: transfer to zero address");
        uint256 fromBalance = balanceOf[from];
        require(fromBalance >= value, "TestToken: balance exceeded");
        unchecked {
            // cannot underflow (checked above) nor overflow (sum of balances is totalSupply)
            balanceOf[from] = fromBalance - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
