using System.Text.Json;
using AgentLab.LabService.Orchestration.Tools;

namespace AgentLab.Tests.Orchestration.Tools;

public sealed class CalculatorToolTests
{
    [Theory]
    [InlineData("1 + 2 * 3", "7")]                 // precedence
    [InlineData("(1 + 2) * 3", "9")]
    [InlineData("10 - 4 - 3", "3")]                // left-associative
    [InlineData("100 / 10 / 5", "2")]
    [InlineData("2 ^ 3 ^ 2", "512")]               // right-associative: 2^(3^2)
    [InlineData("-2 ^ 2", "-4")]                   // unary minus binds looser than ^
    [InlineData("2 ^ -1", "0.5")]
    [InlineData("--3", "3")]
    [InlineData("+4 - -2", "6")]
    [InlineData("-(3 + 4) * 2", "-14")]
    [InlineData("7 % 3", "1")]
    [InlineData("-7 % 3", "-1")]
    [InlineData("0.1 + 0.2", "0.3")]               // 12 significant digits hide binary noise
    [InlineData(".5 * 4", "2")]
    [InlineData("1.5e3 + 2E-1", "1500.2")]
    [InlineData("1e+2", "100")]
    [InlineData("sqrt(16) + abs(-3)", "7")]
    [InlineData("min(4, 2, 8) + max(1, 9)", "11")]
    [InlineData("round(2.5)", "3")]                // away from zero, as people round
    [InlineData("round(3.14159, 2)", "3.14")]
    [InlineData("floor(-1.5) + ceil(1.2)", "0")]
    [InlineData("ln(e)", "1")]
    [InlineData("log10(1000)", "3")]
    [InlineData("sin(0) + cos(0)", "1")]
    [InlineData("tan(pi / 4)", "1")]
    [InlineData("PI", "3.14159265359")]
    [InlineData("SQRT(9)", "3")]
    [InlineData("2 \u00D7 3 \u2212 1", "5")]
    [InlineData("1/3", "0.333333333333")]
    [InlineData("123456789 * 1000", "123456789000")]
    [InlineData("-0", "0")]
    [InlineData("10 ^ 20", "1E+20")]
    public void Evaluate_ValidExpression_ReturnsFormattedValue(string expression, string expected)
    {
        var result = CalculatorTool.Evaluate(expression);

        Assert.True(result.Ok, result.Content);
        Assert.Equal(expected, result.Content);
    }

    [Theory]
    [InlineData("(1 + 2))", "unexpected ')' at 7")]
    [InlineData("1 +", "unexpected end of expression at 3")]
    [InlineData("(1 + 2", "unexpected end of expression at 6; expected ')'")]
    [InlineData("2 * * 3", "unexpected '*' at 4")]
    [InlineData("1 / 0", "division by zero at 2")]
    [InlineData("5 % (2 - 2)", "modulo by zero at 2")]
    [InlineData("foo(1)", "unknown function 'foo' at 0; known: sqrt, abs, min, max, round, floor, ceil, ln, log10, sin, cos, tan")]
    [InlineData("2 * x", "unknown name 'x' at 4")]
    [InlineData("3 $ 4", "unexpected character '$' at 2")]
    [InlineData("sqrt(-4)", "sqrt of a negative number (-4) at 0")]
    [InlineData("ln(0)", "ln needs a positive number, got 0 at 0")]
    [InlineData("sqrt(1, 2)", "sqrt at 0 takes exactly 1 argument, got 2")]
    [InlineData("min()", "min at 0 needs at least one argument")]
    [InlineData("round(1.5, 0.5)", "round at 0: digits must be a whole number")]
    [InlineData("10 ^ 400", "the result at 3 is too large")]
    [InlineData("2 ^ 2 ^ 2 ^ 2 ^ 2 ^ 2", "the result at 6 is too large")]   // 2^65536, the second ^ from the left
    [InlineData("1e999", "number '1e999' at 0 is too large")]
    [InlineData("(-8) ^ 0.5", "-8 ^ 0.5 at 5 is not a real number")]
    [InlineData("1.2.3", "unexpected '.' at 3")]
    [InlineData("2e", "unexpected 'e' at 1")]
    [InlineData("2 pi", "unexpected 'pi' at 2")]
    [InlineData("", "expression is empty")]
    [InlineData("   ", "expression is empty")]
    public void Evaluate_InvalidExpression_ReturnsErrorWithPosition(string expression, string expectedStart)
    {
        var result = CalculatorTool.Evaluate(expression);

        Assert.False(result.Ok);
        Assert.StartsWith(expectedStart, result.Content);
    }

    [Fact]
    public void Evaluate_NestingAtLimit_IsEvaluated()
    {
        var expression = new string('(', CalculatorTool.MaxDepth) + "1" + new string(')', CalculatorTool.MaxDepth);

        var result = CalculatorTool.Evaluate(expression);

        Assert.Equal(new ToolResult(true, "1"), result);
    }

    [Fact]
    public void Evaluate_NestingOverLimit_ReturnsError()
    {
        var depth = CalculatorTool.MaxDepth + 1;
        var expression = new string('(', depth) + "1" + new string(')', depth);

        var result = CalculatorTool.Evaluate(expression);

        Assert.False(result.Ok);
        Assert.Equal($"expression is nested too deeply at {depth - 1} (at most 50 levels of parentheses)", result.Content);
    }

    [Fact]
    public void Evaluate_FunctionCallsCountAsNesting_ReturnsError()
    {
        var expression = string.Concat(Enumerable.Repeat("abs(", 51)) + "1" + new string(')', 51);

        var result = CalculatorTool.Evaluate(expression);

        Assert.False(result.Ok);
        Assert.Contains("nested too deeply", result.Content);
    }

    [Fact]
    public void Evaluate_LongUnaryChainWithinLengthLimit_IsEvaluated()
    {
        var expression = new string('-', 400) + "1";

        var result = CalculatorTool.Evaluate(expression);

        Assert.Equal(new ToolResult(true, "1"), result);
    }

    [Fact]
    public void Evaluate_ExpressionOverLengthLimit_ReturnsError()
    {
        var expression = string.Join("+", Enumerable.Repeat("1", 251));   // 501 characters

        var result = CalculatorTool.Evaluate(expression);

        Assert.False(result.Ok);
        Assert.Equal("expression is too long (501 characters; at most 500)", result.Content);
    }

    [Theory]
    [InlineData("""{"expression":"6 * 7"}""", true, "42")]
    [InlineData("""{"Expression":"6 * 7"}""", true, "42")]
    [InlineData("""{"expression":42}""", true, "42")]
    [InlineData("""{}""", false, "missing argument 'expression' (a string)")]
    [InlineData("""{"expression":null}""", false, "missing argument 'expression' (a string)")]
    [InlineData("""{"expression":["1+1"]}""", false, "argument 'expression' must be a string, not an array")]
    [InlineData("""["1+1"]""", false, "arguments must be a JSON object like {\"expression\": \"...\"}, not an array")]
    public async Task InvokeAsync_Arguments_AreReadLeniently(string arguments, bool ok, string content)
    {
        var tool = new CalculatorTool();
        using var json = JsonDocument.Parse(arguments);

        var result = await tool.InvokeAsync(json.RootElement, TestContext.Current.CancellationToken);

        Assert.Equal(new ToolResult(ok, content), result);
    }

    [Fact]
    public async Task InvokeAsync_Cancelled_Throws()
    {
        var tool = new CalculatorTool();
        using var json = JsonDocument.Parse("""{"expression":"1"}""");

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tool.InvokeAsync(json.RootElement, new CancellationToken(true)).AsTask());
    }
}
