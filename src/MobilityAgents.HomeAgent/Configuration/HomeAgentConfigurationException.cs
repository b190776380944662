namespace MobilityAgents.HomeAgent.Configuration;

/// <summary>
/// The configuration is unusable. <see cref="Errors"/> has one line per problem, each starting
/// with the key it concerns ("HomePrefix: '192.0.2.0/33' is not an IPv4 prefix"); the daemon
/// prints them and exits with <see cref="HomeAgentHost.ExitConfigurationError"/>, no stack trace.
/// </summary>
public sealed class HomeAgentConfigurationException : Exception
{
    public HomeAgentConfigurationException(IReadOnlyList<string> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public HomeAgentConfigurationException(string error)
        : this([error])
    {
    }

    public HomeAgentConfigurationException()
        : this("invalid configuration")
    {
    }

    public HomeAgentConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    public IReadOnlyList<string> Errors { get; }
}
